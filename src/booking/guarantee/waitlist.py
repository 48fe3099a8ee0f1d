"""The earlier-slot waitlist: "tell me if something earlier frees up".

A booking joins with a window (earliest, latest start it would take; latest defaults
to its own start). When a cancellation or a move frees a time, the worker records a
``freed_slot`` and offers it to the matching waiting customers in the order they
joined, holding it for the first for :data:`WAITLIST_TTL`. No answer: the hold is
released and the next customer gets it (see ``expire_due_offers``). Accepting moves the
booking atomically (the same path as any reschedule offer), and the later time it
frees cascades in turn.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.availability.context import load_service_context
from booking.availability.service import search_slots
from booking.bookings.policy import check_changeable
from booking.bookings.store import BOOKING_COLUMNS, record_event
from booking.errors import InvalidInput, NotFound
from booking.guarantee.offer_rows import GUARANTEE, hold_options, insert_offer
from booking.guarantee.offer_seats import hold_freed_seats
from booking.outbox.dispatch import OutboxEvent

WAITLIST_TTL = timedelta(minutes=15)
ENTRY_COLUMNS = "id, business_id, booking_id, earliest, latest, status, created_by, created_at"


async def join_waitlist(
    principal: Principal,
    booking_id: UUID,
    *,
    earliest: datetime | None = None,
    latest: datetime | None = None,
) -> dict[str, Any]:
    """Add (or update) the booking's place on the earlier-slot list."""
    async with db.transaction() as conn:
        booking = await conn.fetchrow(
            f"SELECT {BOOKING_COLUMNS} FROM booking b WHERE b.id = $1 FOR UPDATE", booking_id
        )
        if booking is None or not principal.may_see_booking(
            booking["business_id"], booking["id"], booking["partner_id"]
        ):
            raise NotFound("No such booking.")
        if principal.kind != "customer":
            principal.require("bookings:change", booking["business_id"])
        check_changeable(booking["status"], "join the waitlist").enforce()
        now = datetime.now(UTC)
        for name, value in (("earliest", earliest), ("latest", latest)):
            if value is not None and value.tzinfo is None:
                raise InvalidInput(f"'{name}' needs an offset, e.g. 2026-03-29T09:00:00+02:00.")
        start = max((earliest or now).astimezone(UTC), now)
        end = (latest or booking["starts_at"]).astimezone(UTC)
        if end > booking["starts_at"]:
            raise InvalidInput("'latest' must not be after the booking's own time.", field="latest")
        if end <= start:
            raise InvalidInput("The window is empty: 'latest' must be after 'earliest'.")
        row = await conn.fetchrow(
            f"""
            UPDATE waitlist_entry SET earliest = $2, latest = $3
            WHERE booking_id = $1 AND status = 'waiting' RETURNING {ENTRY_COLUMNS}
            """,
            booking_id,
            start,
            end,
        )
        if row is None:
            row = await conn.fetchrow(
                f"""
                INSERT INTO waitlist_entry (business_id, booking_id, earliest, latest, created_by)
                VALUES ($1, $2, $3, $4, $5) RETURNING {ENTRY_COLUMNS}
                """,
                booking["business_id"],
                booking_id,
                start,
                end,
                principal.actor_label,
            )
            await record_event(
                conn,
                booking,
                "waitlist.joined",
                principal,
                principal.default_channel,
                changes={"earliest": start, "latest": end},
            )
    assert row is not None
    return dict(row)


async def leave_waitlist(principal: Principal, booking_id: UUID) -> bool:
    async with db.transaction() as conn:
        booking = await conn.fetchrow(
            "SELECT id, business_id, partner_id FROM booking WHERE id = $1", booking_id
        )
        if booking is None or not principal.may_see_booking(
            booking["business_id"], booking["id"], booking["partner_id"]
        ):
            raise NotFound("No such booking.")
        if principal.kind != "customer":
            principal.require("bookings:change", booking["business_id"])
        result: str = await conn.execute(
            "UPDATE waitlist_entry SET status = 'cancelled', closed_at = now() "
            "WHERE booking_id = $1 AND status = 'waiting'",
            booking_id,
        )
    return result.endswith(" 1")


async def waitlist_entry_for(conn: asyncpg.Connection, booking_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {ENTRY_COLUMNS} FROM waitlist_entry WHERE booking_id = $1 AND status = 'waiting'",
        booking_id,
    )
    return None if row is None else dict(row)


def _freed_time(event: OutboxEvent, booking: asyncpg.Record) -> tuple[datetime, UUID] | None:
    """The (start, staff) a cancel or a move gave back, from the event itself."""
    if event.topic == "booking.cancelled":
        raw = event.payload.get("starts_at")
        starts = datetime.fromisoformat(raw) if raw else booking["starts_at"]
        return starts, booking["staff_id"]
    changes = event.payload.get("changes") or {}
    moved_start = changes.get("starts_at")
    moved_staff = changes.get("staff_id")
    if not moved_start and not moved_staff:
        return None  # a service change on the same time and person frees nothing certain
    starts = (
        datetime.fromisoformat(str(moved_start["from"]))
        if moved_start
        else datetime.fromisoformat(str(event.payload["starts_at"]))
    )
    staff = UUID(str(moved_staff["from"])) if moved_staff else booking["staff_id"]
    return starts, staff


async def on_booking_freed(conn: asyncpg.Connection, event: OutboxEvent) -> None:
    """A cancel or a move: record the freed time once and offer it down the waitlist."""
    if event.aggregate_id is None or event.business_id is None:
        return
    booking = await conn.fetchrow(
        "SELECT id, business_id, staff_id, starts_at FROM booking WHERE id = $1",
        event.aggregate_id,
    )
    if booking is None:
        return
    freed = _freed_time(event, booking)
    if freed is None or freed[0] <= datetime.now(UTC):
        return
    waiting = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM waitlist_entry WHERE business_id = $1 "
        "AND status = 'waiting' AND earliest <= $2 AND $2 < latest)",
        booking["business_id"],
        freed[0],
    )
    if not waiting:
        return
    slot_id = await conn.fetchval(
        """
        INSERT INTO freed_slot (business_id, source_booking_id, staff_id, starts_at, dedupe_key)
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (business_id, dedupe_key) DO NOTHING RETURNING id
        """,
        booking["business_id"],
        booking["id"],
        freed[1],
        freed[0],
        f"outbox:{event.id}",
    )
    if slot_id is not None:
        await offer_freed_slot(conn, slot_id)


async def offer_freed_slot(conn: asyncpg.Connection, freed_slot_id: UUID) -> dict[str, Any] | None:
    """Offer the freed time to the next matching waiting customer (caller's transaction)."""
    freed = await conn.fetchrow(
        "SELECT id, business_id, staff_id, starts_at, status FROM freed_slot WHERE id = $1 "
        "FOR UPDATE",
        freed_slot_id,
    )
    if freed is None or freed["status"] != "open":
        return None
    candidates = await conn.fetch(
        f"""
        SELECT w.id AS entry_id, {BOOKING_COLUMNS}
        FROM waitlist_entry w JOIN booking b ON b.id = w.booking_id
        WHERE w.business_id = $1 AND w.status = 'waiting'
          AND b.status IN ('pending', 'confirmed')
          AND w.earliest <= $2 AND $2 < w.latest AND b.starts_at > $2
          AND NOT EXISTS (SELECT 1 FROM reschedule_offer o
                          WHERE o.freed_slot_id = $3 AND o.waitlist_entry_id = w.id)
          AND NOT EXISTS (SELECT 1 FROM reschedule_offer o
                          WHERE o.booking_id = w.booking_id AND o.status = 'open')
        ORDER BY w.created_at, w.id
        FOR UPDATE OF w SKIP LOCKED
        """,
        freed["business_id"],
        freed["starts_at"],
        freed["id"],
    )
    now = datetime.now(UTC)
    expires_at = min(now + WAITLIST_TTL, freed["starts_at"])
    for candidate in candidates:
        if candidate["session_id"] is not None:  # a class seat: seats in the freed class
            holds = await hold_freed_seats(
                conn, candidate, freed["starts_at"], freed["staff_id"], expires_at
            )
            if holds:
                return await _offer_earlier(conn, candidate, freed, expires_at, holds)
            continue
        context = await load_service_context(
            conn, candidate["business_id"], candidate["service_id"]
        )
        if freed["staff_id"] not in context.eligible_staff:
            continue
        step = context.step
        slots = await search_slots(
            conn,
            context,
            freed["starts_at"],
            freed["starts_at"] + step,
            staff_id=freed["staff_id"],
            exclude_booking=candidate["id"],
        )
        if not any(slot.starts_at == freed["starts_at"] for slot in slots):
            continue
        holds = await hold_options(
            conn, context, candidate, expires_at, [(freed["starts_at"], freed["staff_id"])], 1
        )
        if not holds:
            continue
        return await _offer_earlier(conn, candidate, freed, expires_at, holds)
    await conn.execute(
        "UPDATE freed_slot SET status = 'exhausted', closed_at = now() WHERE id = $1", freed["id"]
    )
    return None


async def _offer_earlier(
    conn: asyncpg.Connection,
    candidate: asyncpg.Record,
    freed: asyncpg.Record,
    expires_at: datetime,
    holds: list[dict[str, Any]],
) -> dict[str, Any]:
    return await insert_offer(
        conn,
        candidate,
        kind="earlier_slot",
        reason="an earlier time became free",
        expires_at=expires_at,
        holds=holds,
        waitlist_entry_id=candidate["entry_id"],
        freed_slot_id=freed["id"],
    )


__all__ = [
    "GUARANTEE",
    "WAITLIST_TTL",
    "join_waitlist",
    "leave_waitlist",
    "offer_freed_slot",
    "on_booking_freed",
    "waitlist_entry_for",
]
