"""Reschedule offers: when a booked slot is lost, hold concrete alternatives and let the
customer pick one; acceptance moves the same booking row atomically.

* :func:`add_time_off` / :func:`deactivate_staff` change the staff member's calendar and,
  in the same transaction, write its ``schedule.changed`` event (booking.schedule_changes),
  find the bookings that can no longer be honoured, mark them at risk and open an offer
  for each (:func:`open_lost_slot_offer`).
* An offer's alternatives are ``held`` booking rows that expire with the offer, so the
  exclusion constraint guarantees whichever the customer picks.
* :func:`booking.guarantee.accept.accept_offer` cancels the chosen hold and moves the
  booking into its time in one transaction (same id and reference, version + 1, history
  with actor and reason), and releases the other holds at once.
* :func:`expire_due_offers` (a cron job) releases the holds of unanswered offers; a lost
  slot's expiry alerts the business and sends the customer a final message with a link
  to pick any free time; an earlier-slot offer cascades to the next waitlisted customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.availability.context import load_service_context
from booking.availability.service import alternatives_near
from booking.bookings.store import BOOKING_COLUMNS, record_event
from booking.errors import InvalidInput, NotFound
from booking.guarantee import events, promises
from booking.guarantee.offer_rows import GUARANTEE, OFFER_COLUMNS
from booking.guarantee.offer_rows import hold_options as _hold_options
from booking.guarantee.offer_rows import insert_offer as _insert_offer
from booking.guarantee.offer_rows import offer_options as _options
from booking.guarantee.offer_seats import hold_next_seats
from booking.guarantee.offer_visits import hold_visit_options
from booking.guarantee.sql import STILL_LOST as STILL_LOST
from booking.guarantee.waitlist import offer_freed_slot
from booking.schedule_changes import schedule_changed

# How long a lost-slot offer holds its alternatives, by how far off the appointment is
# (docs/journey.md): the customer of a booking tomorrow must decide within 2 hours so
# the held times go back to others in time; a week out they get a day to think.
OFFER_LIFETIMES: tuple[tuple[timedelta, timedelta], ...] = (
    (timedelta(days=2), timedelta(hours=2)),  # today or tomorrow
    (timedelta(days=4), timedelta(hours=6)),
    (timedelta(days=7), timedelta(hours=12)),
)
LONGEST_OFFER_LIFETIME = timedelta(hours=24)  # a week or more away


def offer_lifetime(now: datetime, starts_at: datetime) -> timedelta:
    """How long the offer's holds last for an appointment at ``starts_at`` (the offer
    also ends at the appointment's start, whichever is sooner)."""
    lead = starts_at - now
    for closer_than, lifetime in OFFER_LIFETIMES:
        if lead < closer_than:
            return lifetime
    return LONGEST_OFFER_LIFETIME


# An offer that would live less than this is pointless: the customer could not act on it.
MIN_OFFER_WINDOW = timedelta(minutes=5)
OPTIONS_PER_OFFER = 3
CANDIDATES = 40  # nearest free slots considered per offer (many overlap each other)
MAX_TIME_OFF = timedelta(days=366)
# Why accepting an offer may break the change policy (recorded in the history when it does).
OFFER_EXEMPTIONS = {
    "lost_slot": "the business could not keep the booked time",
    "earlier_slot": "an earlier time offered from the waitlist",
}


@dataclass(frozen=True, slots=True)
class LostSlotOutcome:
    """What a calendar change did: the bookings it put at risk and the offers made."""

    affected: list[UUID]
    offers: list[dict[str, Any]]
    time_off: dict[str, Any] | None = None
    staff: dict[str, Any] | None = None


def _aware(moment: datetime, field: str) -> datetime:
    if moment.tzinfo is None:
        raise InvalidInput(f"'{field}' needs an offset, e.g. 2026-03-29T09:00:00+02:00.")
    return moment.astimezone(UTC)


async def _lock_staff(
    conn: asyncpg.Connection, business_id: UUID, staff_id: UUID
) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT id, business_id, name, active FROM staff WHERE id = $1 AND business_id = $2 "
        "FOR UPDATE",
        staff_id,
        business_id,
    )
    if row is None:
        raise NotFound("No such member of staff at this business.")
    return row


async def _affected_bookings(
    conn: asyncpg.Connection, staff_id: UUID, starts_at: datetime, ends_at: datetime
) -> list[asyncpg.Record]:
    """Active, not yet started bookings of the staff member in the range, locked (a
    visit when one of its segments is theirs in the range)."""
    return list(
        await conn.fetch(
            f"""
            SELECT {BOOKING_COLUMNS} FROM booking b
            WHERE b.status IN ('pending', 'confirmed') AND b.starts_at > now()
              AND b.id IN (
                SELECT o.id FROM booking o WHERE o.staff_id = $1 AND NOT o.is_sequence
                  AND tstzrange(o.starts_at, o.ends_at, '[)') && tstzrange($2, $3, '[)')
                UNION
                SELECT g.booking_id FROM booking_segment g WHERE g.staff_id = $1
                  AND tstzrange(g.starts_at, g.ends_at, '[)') && tstzrange($2, $3, '[)'))
            ORDER BY b.starts_at, b.id
            FOR UPDATE
            """,
            staff_id,
            starts_at,
            ends_at,
        )
    )


async def add_time_off(
    principal: Principal,
    business_id: UUID,
    staff_id: UUID,
    starts_at: datetime,
    ends_at: datetime,
    *,
    reason: str = "",
    kind: str = "time_off",
) -> LostSlotOutcome:
    """Record time off (or sick leave) and, in the same transaction, offer every booking
    it overlaps a choice of new times."""
    principal.require_manager(business_id)
    starts_at, ends_at = _aware(starts_at, "starts_at"), _aware(ends_at, "ends_at")
    if ends_at <= starts_at:
        raise InvalidInput("'ends_at' must be after 'starts_at'.", field="ends_at")
    if ends_at - starts_at > MAX_TIME_OFF:
        raise InvalidInput("Time off can span at most a year at a time.", field="ends_at")
    if kind not in ("time_off", "sick_leave"):
        raise InvalidInput("kind is time_off or sick_leave.", field="kind")
    label = "sick leave" if kind == "sick_leave" else "time off"
    async with db.transaction() as conn:
        await _lock_staff(conn, business_id, staff_id)
        time_off = await conn.fetchrow(
            """
            INSERT INTO time_off (business_id, staff_id, starts_at, ends_at, reason)
            VALUES ($1, $2, $3, $4, $5)
            RETURNING id, business_id, staff_id, starts_at, ends_at, reason, created_at
            """,
            business_id,
            staff_id,
            starts_at,
            ends_at,
            f"{label}: {reason}".strip(": ") if reason else label,
        )
        assert time_off is not None
        await schedule_changed(
            conn, business_id, kind, starts_at, ends_at, aggregate_id=time_off["id"]
        )
        bookings = await _affected_bookings(conn, staff_id, starts_at, ends_at)
        offers = [await open_lost_slot_offer(conn, row, label, principal) for row in bookings]
    return LostSlotOutcome(
        affected=[row["id"] for row in bookings], offers=offers, time_off=dict(time_off)
    )


async def deactivate_staff(
    principal: Principal, business_id: UUID, staff_id: UUID, *, reason: str = ""
) -> LostSlotOutcome:
    """Take a member of staff off the rota; each of their future bookings gets an offer."""
    principal.require_manager(business_id)
    async with db.transaction() as conn:
        await _lock_staff(conn, business_id, staff_id)
        staff = await conn.fetchrow(
            "UPDATE staff SET active = false WHERE id = $1 RETURNING id, name, active", staff_id
        )
        assert staff is not None
        await schedule_changed(conn, business_id, "staff_deactivated", aggregate_id=staff_id)
        far = datetime.now(UTC) + timedelta(days=3650)
        bookings = await _affected_bookings(conn, staff_id, datetime.now(UTC), far)
        label = f"staff unavailable: {reason}" if reason else "staff unavailable"
        offers = [await open_lost_slot_offer(conn, row, label, principal) for row in bookings]
    return LostSlotOutcome(
        affected=[row["id"] for row in bookings], offers=offers, staff=dict(staff)
    )


async def withdraw_open_offer(conn: asyncpg.Connection, booking_id: UUID, why: str) -> None:
    """Close the booking's open offer (if any) and release its holds; an earlier time
    offered from the waitlist moves on to the next customer."""
    offer = await conn.fetchrow(
        "SELECT id, kind, freed_slot_id FROM reschedule_offer "
        "WHERE booking_id = $1 AND status = 'open' FOR UPDATE",
        booking_id,
    )
    if offer is None:
        return
    await release_holds(conn, offer["id"], keep=None, status="cancelled", why=why)
    await conn.execute(
        "UPDATE reschedule_offer SET status = 'withdrawn', decided_at = now(), decided_by = $2 "
        "WHERE id = $1",
        offer["id"],
        GUARANTEE.actor_label,
    )
    await promises.settle(conn, "offer_follow_up", str(offer["id"]), kept=True)
    if offer["freed_slot_id"] is not None:
        await offer_freed_slot(conn, offer["freed_slot_id"])


async def open_lost_slot_offer(
    conn: asyncpg.Connection,
    booking: asyncpg.Record | dict[str, Any],
    reason: str,
    principal: Principal,
) -> dict[str, Any]:
    """Mark the booking at risk and hold up to three alternatives for it (caller's txn)."""
    await conn.execute(
        "UPDATE booking SET at_risk_since = coalesce(at_risk_since, now()), at_risk_reason = $2 "
        "WHERE id = $1",
        booking["id"],
        reason,
    )
    await record_event(
        conn, booking, "booking.at_risk", principal, principal.default_channel, reason=reason
    )
    await withdraw_open_offer(conn, booking["id"], "replaced by a new offer")
    now = datetime.now(UTC)
    expires_at = min(now + offer_lifetime(now, booking["starts_at"]), booking["starts_at"])
    holds: list[dict[str, Any]] = []
    if expires_at - now >= MIN_OFFER_WINDOW and booking["session_id"] is not None:
        # A seat in a cancelled class: the party's seats in the next sessions.
        holds = await hold_next_seats(conn, booking, expires_at, OPTIONS_PER_OFFER)
    elif expires_at - now >= MIN_OFFER_WINDOW and booking["is_sequence"]:
        # A visit: the whole visit held at other starts where every segment fits.
        holds = await hold_visit_options(conn, booking, expires_at, OPTIONS_PER_OFFER)
    elif expires_at - now >= MIN_OFFER_WINDOW:
        context = await load_service_context(conn, booking["business_id"], booking["service_id"])
        nearby = await alternatives_near(
            conn, context, booking["starts_at"], limit=CANDIDATES, exclude_booking=booking["id"]
        )
        holds = await _hold_options(
            conn,
            context,
            booking,
            expires_at,
            [(slot.starts_at, slot.staff_id) for slot in nearby],
            OPTIONS_PER_OFFER,
        )
    offer = await _insert_offer(
        conn, booking, kind="lost_slot", reason=reason, expires_at=expires_at, holds=holds
    )
    if holds:
        await promises.make(
            conn,
            business_id=booking["business_id"],
            booking_id=booking["id"],
            kind="offer_follow_up",
            subject=str(offer["id"]),
            made_at=now,
            due_at=expires_at,
        )
    return offer


async def release_holds(
    conn: asyncpg.Connection, offer_id: UUID, *, keep: UUID | None, status: str, why: str
) -> int:
    rows = await conn.fetch(
        f"""
        UPDATE booking b SET status = $3, cancel_reason = $4, hold_token_hash = NULL,
               version = version + 1, updated_at = now()
        WHERE b.id IN (SELECT hold_id FROM reschedule_option WHERE offer_id = $1)
          AND b.status = 'held' AND ($2::uuid IS NULL OR b.id <> $2)
        RETURNING {BOOKING_COLUMNS}
        """,
        offer_id,
        keep,
        status,
        why,
    )
    event = "hold.expired" if status == "expired" else "hold.released"
    for row in rows:
        await record_event(conn, row, event, GUARANTEE, "system", from_status="held", reason=why)
    return len(rows)


async def load_offer(conn: asyncpg.Connection, offer_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {OFFER_COLUMNS} FROM reschedule_offer o WHERE o.id = $1", offer_id
    )
    if row is None:
        return None
    return dict(row) | {"options": await _options(conn, offer_id)}


async def open_offer_for_booking(
    conn: asyncpg.Connection, booking_id: UUID
) -> dict[str, Any] | None:
    offer_id = await conn.fetchval(
        "SELECT id FROM reschedule_offer WHERE booking_id = $1 AND status = 'open' "
        "AND expires_at > now()",
        booking_id,
    )
    return None if offer_id is None else await load_offer(conn, offer_id)


async def get_offer(principal: Principal, offer_id: UUID) -> dict[str, Any]:
    async with db.connection() as conn:
        offer = await load_offer(conn, offer_id)
        if offer is None:
            raise NotFound("No such offer.")
        booking = await conn.fetchrow(
            "SELECT id, business_id, partner_id FROM booking WHERE id = $1", offer["booking_id"]
        )
    assert booking is not None
    if not principal.may_see_booking(booking["business_id"], booking["id"], booking["partner_id"]):
        raise NotFound("No such offer.")
    return offer


async def expire_due_offers(batch: int = 200) -> int:
    """Close every open offer past its expiry: release holds, tell whoever must know."""
    async with db.transaction() as conn:
        rows = await conn.fetch(
            f"""
            SELECT {OFFER_COLUMNS} FROM reschedule_offer o
            WHERE o.status = 'open' AND o.expires_at <= now()
            ORDER BY o.expires_at LIMIT $1
            FOR UPDATE SKIP LOCKED
            """,
            batch,
        )
        for offer in rows:
            await release_holds(
                conn, offer["id"], keep=None, status="expired", why="offer expired unanswered"
            )
            await conn.execute(
                "UPDATE reschedule_offer SET status = 'expired', decided_at = now() WHERE id = $1",
                offer["id"],
            )
            await events.emit(
                conn,
                offer["business_id"],
                events.OFFER_EXPIRED,
                offer["booking_id"],
                {
                    "offer_id": str(offer["id"]),
                    "booking_id": str(offer["booking_id"]),
                    "kind": offer["kind"],
                    "expires_at": offer["expires_at"].isoformat(),
                },
            )
            if offer["kind"] == "lost_slot":
                # The expiry alert to the business is this promise's staff alert.
                await promises.settle(
                    conn, "offer_follow_up", str(offer["id"]), kept=False, alerted=True
                )
            elif offer["freed_slot_id"] is not None:
                await offer_freed_slot(conn, offer["freed_slot_id"])
    return len(rows)
