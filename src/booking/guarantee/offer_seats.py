"""Reschedule offers for seats in a group session: when a class is cancelled, each
attendee's offer holds their party's seats in the next sessions of the same class.

The held options are ``held`` seat bookings written by ``booking_place_seats`` like any
seat hold, so the session's counter and its CHECK (``session_seats_within_capacity``)
keep held and booked seats within the capacity together; expiry or release of a hold
gives its seats back through the same trigger. Accepting moves the attendee's booking
with :func:`booking.bookings.store.move_seats` (one UPDATE releases the cancelled class's
seats and takes the new ones) after the chosen hold gave its seats back, in one
transaction holding both sessions' rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from booking.bookings.store import SESSION_CLOSED, SESSION_FULL, insert_seats
from booking.guarantee.offer_rows import GUARANTEE

# Sessions considered per offer: the next ones of the class with room for the party when
# read; one filled by a concurrent booking before its hold is written is skipped.
SEAT_CANDIDATES = 10


async def hold_next_seats(
    conn: asyncpg.Connection,
    booking: asyncpg.Record | dict[str, Any],
    expires_at: datetime,
    wanted: int,
) -> list[dict[str, Any]]:
    """Hold the seat booking's party in up to ``wanted`` sessions of its service that
    start after its own (caller's transaction), the earliest first."""
    candidates = await conn.fetch(
        """
        SELECT s.id FROM session s
        WHERE s.business_id = $1 AND s.service_id = $2 AND s.id <> $3
          AND s.status = 'scheduled' AND s.starts_at > $4 AND s.starts_at > $5
          AND s.capacity - s.seats_taken >= $6
        ORDER BY s.starts_at, s.id LIMIT $7
        """,
        booking["business_id"],
        booking["service_id"],
        booking["session_id"],
        booking["starts_at"],
        expires_at,
        booking["seats"],
        SEAT_CANDIDATES,
    )
    return await _hold_in(conn, booking, [c["id"] for c in candidates], expires_at, wanted)


async def hold_freed_seats(
    conn: asyncpg.Connection,
    booking: asyncpg.Record | dict[str, Any],
    starts_at: datetime,
    staff_id: UUID,
    expires_at: datetime,
) -> list[dict[str, Any]]:
    """The earlier-slot waitlist for a class: hold the seat booking's party in the session
    of its class at ``starts_at`` with ``staff_id`` (where a cancel or a move just gave
    seats back), when the party still fits there (caller's transaction)."""
    candidates = await conn.fetch(
        """
        SELECT s.id FROM session s
        WHERE s.business_id = $1 AND s.service_id = $2 AND s.id <> $3
          AND s.status = 'scheduled' AND s.starts_at = $4 AND s.staff_id = $5
          AND s.starts_at > now() AND s.capacity - s.seats_taken >= $6
        ORDER BY s.id
        """,
        booking["business_id"],
        booking["service_id"],
        booking["session_id"],
        starts_at,
        staff_id,
        booking["seats"],
    )
    return await _hold_in(conn, booking, [c["id"] for c in candidates], expires_at, 1)


async def _hold_in(
    conn: asyncpg.Connection,
    booking: asyncpg.Record | dict[str, Any],
    session_ids: list[UUID],
    expires_at: datetime,
    wanted: int,
) -> list[dict[str, Any]]:
    """Held seat bookings for the party in up to ``wanted`` of ``session_ids``, in order."""
    held: list[dict[str, Any]] = []
    for session_id in session_ids:
        if len(held) >= wanted:
            break
        try:
            # A savepoint: a session filled (or cancelled) since the read above refuses
            # the hold without aborting the caller's transaction.
            async with conn.transaction():
                row = await insert_seats(
                    conn,
                    booking["business_id"],
                    session_id,
                    booking["seats"],
                    status="held",
                    channel="system",
                    principal=GUARANTEE,
                    event="hold.created",
                    hold_expires_at=expires_at,
                    notes=f"held for booking {booking['reference_code']}",
                )
        except asyncpg.CheckViolationError as exc:
            if exc.constraint_name != SESSION_FULL:
                raise
            continue
        except asyncpg.PostgresError as exc:
            if exc.sqlstate != SESSION_CLOSED:
                raise
            continue
        if row is not None:
            held.append(dict(row))
    return held


async def lock_sessions(
    conn: asyncpg.Connection, booking: asyncpg.Record | dict[str, Any], hold_id: UUID
) -> None:
    """Lock the attendee's and the chosen hold's sessions, in id order (the order the
    seats trigger takes them in) and before the hold itself (the order a class
    cancellation takes: session, then its bookings). Held until commit, so nobody takes
    the seats between the hold giving them back and the booking taking them."""
    await conn.execute(
        """
        SELECT 1 FROM session WHERE business_id = $1
          AND id IN ($2, (SELECT session_id FROM booking WHERE id = $3))
        ORDER BY id FOR UPDATE
        """,
        booking["business_id"],
        booking["session_id"],
        hold_id,
    )
