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
    held: list[dict[str, Any]] = []
    for candidate in candidates:
        if len(held) >= wanted:
            break
        try:
            # A savepoint: a session filled (or cancelled) since the read above refuses
            # the hold without aborting the caller's transaction.
            async with conn.transaction():
                row = await insert_seats(
                    conn,
                    booking["business_id"],
                    candidate["id"],
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
