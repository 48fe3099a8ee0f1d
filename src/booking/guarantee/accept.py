"""Accepting a reschedule offer: the booking moves into the chosen held time in one
transaction - same id and reference, version + 1, history with actor and reason - and
the offer's other holds are released at once. A single booking moves with
``bookings.store.move``, a class seat with ``move_seats`` (both sessions locked first),
a visit segment by segment (``offer_visits.take_held_visit``). The offers themselves are
made and expired in :mod:`booking.guarantee.offers`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.availability.context import load_service_context
from booking.bookings.checks import actor, load_policy
from booking.bookings.policy import BookingFacts, Exemption, check_changeable, decide_change
from booking.bookings.store import BOOKING_COLUMNS, move, move_seats, record_event
from booking.errors import InvalidInput, NotFound, SlotTaken
from booking.guarantee import events, promises
from booking.guarantee.errors import OfferClosed, OfferExpired
from booking.guarantee.offer_rows import OFFER_COLUMNS
from booking.guarantee.offer_rows import offer_options as _options
from booking.guarantee.offer_seats import lock_sessions
from booking.guarantee.offer_visits import take_held_visit
from booking.guarantee.offers import OFFER_EXEMPTIONS, release_holds


async def accept_offer(
    principal: Principal, offer_id: UUID, position: int, *, channel: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Move the booking into the chosen held time: (booking, offer). One transaction."""
    async with db.transaction() as conn:
        # Lock order everywhere: the booking, then its offer (the outbox handlers hold the
        # booking FOR SHARE before they touch an offer).
        booking_id = await conn.fetchval(
            "SELECT booking_id FROM reschedule_offer WHERE id = $1", offer_id
        )
        if booking_id is None:
            raise NotFound("No such offer.")
        booking = await conn.fetchrow(
            f"SELECT {BOOKING_COLUMNS} FROM booking b WHERE b.id = $1 FOR UPDATE", booking_id
        )
        assert booking is not None
        offer = await conn.fetchrow(
            f"SELECT {OFFER_COLUMNS} FROM reschedule_offer o WHERE o.id = $1 FOR UPDATE",
            offer_id,
        )
        assert offer is not None
        if not principal.may_see_booking(
            booking["business_id"], booking["id"], booking["partner_id"]
        ):
            raise NotFound("No such offer.")
        if principal.kind != "customer":
            principal.require("bookings:change", booking["business_id"])
        now = datetime.now(UTC)
        if offer["status"] == "expired" or (
            offer["status"] == "open" and offer["expires_at"] <= now
        ):
            raise OfferExpired("The times held for this offer have been released.")
        if offer["status"] != "open":
            raise OfferClosed(
                f"This offer is already {offer['status']}.", offer_status=offer["status"]
            )
        check_changeable(booking["status"], "be moved").enforce()
        option = await conn.fetchrow(
            "SELECT position, hold_id FROM reschedule_option WHERE offer_id = $1 AND position = $2",
            offer_id,
            position,
        )
        if option is None:
            raise InvalidInput("There is no such option in this offer.", field="option")
        if booking["session_id"] is not None:
            await lock_sessions(conn, booking, option["hold_id"])
        hold = await conn.fetchrow(
            f"SELECT {BOOKING_COLUMNS} FROM booking b WHERE b.id = $1 FOR UPDATE",
            option["hold_id"],
        )
        assert hold is not None
        if hold["status"] != "held" or hold["hold_expires_at"] <= now:
            raise SlotTaken("That time is no longer held for you; your booking is unchanged.")
        # The business offered these times: the change policy is waived, on the record.
        decision = decide_change(
            await load_policy(conn, booking["business_id"]),
            BookingFacts.from_row(booking),
            actor=actor(principal),
            now=now,
            new_starts_at=hold["starts_at"],
            exemption=Exemption(OFFER_EXEMPTIONS[offer["kind"]]),
        ).enforce()
        chosen = channel or principal.default_channel
        reason = f"reschedule offer accepted: option {position}"
        used = await conn.fetchrow(
            f"""
            UPDATE booking b SET status = 'cancelled', cancel_reason = $2, hold_token_hash = NULL,
                   version = version + 1, updated_at = now()
            WHERE id = $1 RETURNING {BOOKING_COLUMNS}
            """,
            hold["id"],
            f"taken by booking {booking['reference_code']}",
        )
        await record_event(conn, used, "hold.used", principal, chosen, from_status="held")
        if booking["session_id"] is not None:
            updated = await _take_held_seats(
                conn,
                booking,
                hold,
                principal,
                chosen,
                decision.history_reason(reason),
                policy_override=decision.policy_override,
            )
        elif booking["is_sequence"]:
            updated = await take_held_visit(
                conn,
                booking,
                hold,
                principal,
                chosen,
                decision.history_reason(reason),
                policy_override=decision.policy_override,
            )
        else:
            # The same move as any change (bookings.store.move): the booking takes the
            # freed hold's staff, resource and time in one statement, with its history
            # and outbox row; accepting an offer is not counted as one of the
            # customer's changes.
            context = await load_service_context(
                conn, booking["business_id"], booking["service_id"]
            )
            updated = await move(
                conn,
                booking,
                context,
                [hold["staff_id"]],
                hold["starts_at"],
                principal=principal,
                channel=chosen,
                resource_ids=[hold["resource_id"]] if hold["resource_id"] else [],
                reason=decision.history_reason(reason),
                policy_override=decision.policy_override,
                count_change=False,
            )
        if updated is None:  # pragma: no cover - the hold kept the time until just now
            raise SlotTaken("That time is taken; your booking is unchanged.")
        await conn.execute(
            "UPDATE booking SET at_risk_since = NULL, at_risk_reason = NULL WHERE id = $1",
            booking["id"],
        )
        await release_holds(
            conn, offer_id, keep=None, status="cancelled", why="another option was chosen"
        )
        decided = await conn.fetchrow(
            f"""
            UPDATE reschedule_offer o SET status = 'accepted', accepted_position = $2,
                   decided_at = now(), decided_by = $3
            WHERE id = $1 RETURNING {OFFER_COLUMNS}
            """,
            offer_id,
            position,
            principal.actor_label,
        )
        assert decided is not None
        await promises.settle(conn, "offer_follow_up", str(offer_id), kept=True)
        if offer["kind"] == "earlier_slot":
            await conn.execute(
                "UPDATE waitlist_entry SET status = 'fulfilled', closed_at = now() WHERE id = $1",
                offer["waitlist_entry_id"],
            )
            await conn.execute(
                "UPDATE freed_slot SET status = 'taken', closed_at = now() WHERE id = $1",
                offer["freed_slot_id"],
            )
        await events.emit(
            conn,
            booking["business_id"],
            events.OFFER_ACCEPTED,
            booking["id"],
            {
                "offer_id": str(offer_id),
                "booking_id": str(booking["id"]),
                "kind": offer["kind"],
                "position": position,
                "starts_at": updated["starts_at"].isoformat(),
                "actor": principal.actor_label,
            },
        )
        result_offer = dict(decided) | {"options": await _options(conn, offer_id)}
    return dict(updated), result_offer


async def _take_held_seats(
    conn: asyncpg.Connection,
    booking: asyncpg.Record,
    hold: asyncpg.Record,
    principal: Principal,
    channel: str,
    reason: str | None,
    *,
    policy_override: bool,
) -> asyncpg.Record:
    """Move the seat booking into the session whose held seats were just given back (the
    move any seat change makes, :func:`booking.bookings.store.move_seats`; the sessions
    are locked, so the seats cannot go to anyone else in between)."""
    target = await conn.fetchrow(
        "SELECT id, service_id, staff_id, resource_id, starts_at, ends_at, blocked_from, "
        "blocked_until FROM session WHERE business_id = $1 AND id = $2",
        booking["business_id"],
        hold["session_id"],
    )
    assert target is not None
    moved = await move_seats(conn, booking, target, booking["seats"], count_change=False)
    await record_event(
        conn,
        moved,
        "booking.changed",
        principal,
        channel,
        from_status=booking["status"],
        changes={
            key: {"from": booking[key], "to": moved[key]}
            for key in ("session_id", "starts_at", "staff_id", "resource_id")
            if booking[key] != moved[key]
        },
        reason=reason,
        policy_override=policy_override,
    )
    return moved
