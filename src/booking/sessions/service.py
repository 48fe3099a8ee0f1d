"""Group sessions: schedule, list with seats left, book or hold seats, move seats
between sessions, cancel a class.

The database keeps the count: every booking of seats is written by
``bookings.store`` (``booking_place_seats``), the trigger ``session_seats_sync`` counts
its seats on the session's row and the CHECK ``session_seats_within_capacity`` refuses
the seat that does not fit, for holds and raw SQL alike. This module asks first only
to give friendlier answers (party larger than the class, a cancelled session).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.bookings.checks import (
    CustomerInput,
    actor,
    as_utc,
    channel_for,
    check_access,
    check_version,
    load_policy,
)
from booking.bookings.holds import new_hold_token
from booking.bookings.policy import (
    BookingFacts,
    check_changeable,
    decide_change,
    decide_new_booking,
)
from booking.bookings.store import (
    BOOKING_COLUMNS,
    SESSION_CLOSED,
    SESSION_FULL,
    insert_seats,
    lock_booking,
    move_seats,
    record_event,
    set_status,
)
from booking.customers import customer_fields
from booking.errors import (
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotFound,
    SessionFull,
    SlotTaken,
)
from booking.guarantee.offers import open_lost_slot_offer

SESSION_COLUMNS = """
    s.id, s.business_id, s.service_id, s.staff_id, s.resource_id, s.starts_at, s.ends_at,
    s.blocked_from, s.blocked_until, s.capacity, s.seats_taken,
    s.capacity - s.seats_taken AS seats_left, s.status, s.version
"""
MAX_LISTED = 200  # sessions in one answer


def _require_staff(principal: Principal, business_id: UUID) -> None:
    principal.require_business(business_id)
    if not principal.is_staff:
        raise Forbidden("Only the business schedules its classes.")


async def session_row(
    conn: asyncpg.Connection, business_id: UUID, session_id: UUID, *, lock: bool = False
) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"SELECT {SESSION_COLUMNS} FROM session s WHERE s.business_id = $1 AND s.id = $2"
        + (" FOR UPDATE" if lock else ""),
        business_id,
        session_id,
    )
    if row is None:
        raise NotFound("No such session at this business.")
    return row


async def set_group_service(
    principal: Principal, business_id: UUID, service_id: UUID, capacity: int | None
) -> dict[str, Any]:
    principal.require_manager(business_id)
    async with db.transaction() as conn:
        found = await conn.fetchval(
            "UPDATE service SET group_capacity = $3 WHERE business_id = $1 AND id = $2 "
            "RETURNING true",
            business_id,
            service_id,
            capacity,
        )
    if not found:
        raise NotFound("No such service at this business.")
    return {"service_id": service_id, "capacity": capacity}


async def schedule_session(
    principal: Principal,
    business_id: UUID,
    service_id: UUID,
    starts_at: datetime,
    staff_id: UUID,
    *,
    resource_id: UUID | None = None,
    capacity: int | None = None,
) -> dict[str, Any]:
    """A class of a group service at ``starts_at`` with ``staff_id`` (and a room): it
    takes their time under ``allocation_no_overlap`` like any booking (409 if taken)."""
    _require_staff(principal, business_id)
    starts_at = as_utc(starts_at, "starts_at")
    if starts_at <= datetime.now(UTC):
        raise InvalidInput("A session cannot start in the past.", field="starts_at")
    async with db.transaction() as conn:
        service = await conn.fetchrow(
            """
            SELECT s.group_capacity, s.duration_minutes, s.buffer_before_minutes,
                   s.buffer_after_minutes,
                   EXISTS (SELECT 1 FROM service_staff ss WHERE ss.business_id = s.business_id
                           AND ss.service_id = s.id AND ss.staff_id = $3) AS eligible,
                   (SELECT r.kind <> 'staff' AND r.active FROM resource r
                    WHERE r.business_id = s.business_id AND r.id = $4) AS room_ok
            FROM service s WHERE s.business_id = $1 AND s.id = $2 AND s.active
            """,
            business_id,
            service_id,
            staff_id,
            resource_id,
        )
        if service is None:
            raise NotFound("No such service at this business.")
        if service["group_capacity"] is None:
            raise InvalidInput(
                "That service is not a group service; make it one first "
                "(PUT .../services/{id}/group).",
                field="service_id",
            )
        if not service["eligible"]:
            raise InvalidInput(
                "That member of staff does not offer this service.", field="staff_id"
            )
        if resource_id is not None and not service["room_ok"]:
            raise InvalidInput("No such room, chair or device in use here.", field="resource_id")
        ends_at = starts_at + timedelta(minutes=service["duration_minutes"])
        try:
            async with conn.transaction():
                row = await conn.fetchrow(
                    f"""
                    INSERT INTO session AS s (business_id, service_id, staff_id, resource_id,
                        starts_at, ends_at, blocked_from, blocked_until, capacity)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {SESSION_COLUMNS}
                    """,
                    business_id,
                    service_id,
                    staff_id,
                    resource_id,
                    starts_at,
                    ends_at,
                    starts_at - timedelta(minutes=service["buffer_before_minutes"]),
                    ends_at + timedelta(minutes=service["buffer_after_minutes"]),
                    capacity or service["group_capacity"],
                )
        except asyncpg.ExclusionViolationError:
            raise SlotTaken(
                "The member of staff or the room is already booked at that time."
            ) from None
    assert row is not None
    return dict(row)


async def list_sessions(
    principal: Principal,
    business_id: UUID,
    service_id: UUID | None,
    starts_from: datetime,
    starts_until: datetime,
    *,
    with_seats_only: bool = False,
) -> list[dict[str, Any]]:
    """Scheduled sessions starting in the range, with the seats left (what availability
    means for a group service)."""
    principal.require("availability:read", business_id)
    starts_from = as_utc(starts_from, "from")
    starts_until = as_utc(starts_until, "to")
    if starts_until <= starts_from:
        raise InvalidInput("'to' must be after 'from'.", field="to")
    async with db.connection() as conn:
        rows = await conn.fetch(
            f"""
            SELECT {SESSION_COLUMNS} FROM session s
            WHERE s.business_id = $1 AND ($2::uuid IS NULL OR s.service_id = $2)
              AND s.status = 'scheduled' AND s.starts_at >= $3 AND s.starts_at < $4
              AND (NOT $5 OR s.seats_taken < s.capacity)
            ORDER BY s.starts_at, s.id LIMIT {MAX_LISTED}
            """,
            business_id,
            service_id,
            starts_from,
            starts_until,
            with_seats_only,
        )
    return [dict(row) for row in rows]


async def get_session(principal: Principal, business_id: UUID, session_id: UUID) -> dict[str, Any]:
    principal.require("availability:read", business_id)
    async with db.connection() as conn:
        return dict(await session_row(conn, business_id, session_id))


async def _seat_rules(
    conn: asyncpg.Connection, principal: Principal, business_id: UUID, session_id: UUID, seats: int
) -> asyncpg.Record:
    """The session and the business's rules a new seat booking is checked against."""
    row = await conn.fetchrow(
        f"""
        SELECT {SESSION_COLUMNS}, b.min_notice_minutes, b.locale, b.hold_ttl_seconds,
               sv.requires_confirmation
        FROM session s JOIN business b ON b.id = s.business_id
        JOIN service sv ON sv.business_id = s.business_id AND sv.id = s.service_id
        WHERE s.business_id = $1 AND s.id = $2
        """,
        business_id,
        session_id,
    )
    if row is None:
        raise NotFound("No such session at this business.")
    if row["status"] != "scheduled":
        raise InvalidTransition("That session was cancelled.", session_status=row["status"])
    if seats > row["capacity"]:
        raise InvalidInput(
            f"The party ({seats}) is larger than the session ({row['capacity']} seats).",
            field="seats",
            capacity=row["capacity"],
        )
    decide_new_booking(
        timedelta(minutes=row["min_notice_minutes"]),
        actor=actor(principal),
        now=datetime.now(UTC),
        starts_at=row["starts_at"],
    ).enforce()
    return row


async def session_full(
    business_id: UUID, session_id: UUID, seats: int, *, detail: str | None = None
) -> SessionFull:
    """SessionFull with the seats left now and the next sessions of the same service
    that still have room for the party (read after the refused write)."""
    async with db.connection() as conn:
        here = await conn.fetchrow(
            "SELECT service_id, starts_at, capacity - seats_taken AS seats_left FROM session "
            "WHERE business_id = $1 AND id = $2",
            business_id,
            session_id,
        )
        assert here is not None
        nearby = await conn.fetch(
            f"""
            SELECT {SESSION_COLUMNS} FROM session s
            WHERE s.business_id = $1 AND s.service_id = $2 AND s.id <> $3
              AND s.status = 'scheduled' AND s.starts_at > now()
              AND s.capacity - s.seats_taken >= $4
            ORDER BY abs(extract(epoch FROM s.starts_at - $5::timestamptz)), s.id LIMIT 3
            """,
            business_id,
            here["service_id"],
            session_id,
            seats,
            here["starts_at"],
        )
    return SessionFull(
        detail or f"Only {here['seats_left']} seats are left in that session.",
        seats_left=here["seats_left"],
        alternatives=[
            {
                "session_id": str(row["id"]),
                "starts_at": row["starts_at"].isoformat(),
                "seats_left": row["seats_left"],
            }
            for row in nearby
        ],
    )


def _refusal(exc: asyncpg.PostgresError) -> str | None:
    """'full' / 'closed' when the database refused seats, else None."""
    if isinstance(exc, asyncpg.CheckViolationError) and exc.constraint_name == SESSION_FULL:
        return "full"
    if exc.sqlstate == SESSION_CLOSED:
        return "closed"
    return None


async def book_seats(
    principal: Principal,
    business_id: UUID,
    session_id: UUID,
    seats: int,
    customer: CustomerInput | None,
    *,
    channel: str | None = None,
    notes: str = "",
    hold: bool = False,
) -> tuple[dict[str, Any], str | None]:
    """Book (or hold, for the business's hold TTL) ``seats`` in a session: one statement.
    Returns the booking and, for a hold, its token."""
    principal.require("bookings:write", business_id)
    chosen_channel = channel_for(principal, channel)
    token, token_hash = new_hold_token() if hold else (None, None)
    try:
        async with db.connection() as conn:
            rules = await _seat_rules(conn, principal, business_id, session_id, seats)
            fields = None
            if customer is not None:
                fields = customer_fields(
                    name=customer.name,
                    phone=customer.phone,
                    locale=customer.locale,
                    business_locale=rules["locale"],
                )
            row = await insert_seats(
                conn,
                business_id,
                session_id,
                seats,
                status="held"
                if hold
                else ("pending" if rules["requires_confirmation"] else "confirmed"),
                channel=chosen_channel,
                principal=principal,
                event="hold.created" if hold else "booking.created",
                customer=fields,
                hold_expires_at=datetime.now(UTC) + timedelta(seconds=rules["hold_ttl_seconds"])
                if hold
                else None,
                hold_token_hash=token_hash,
                notes=notes,
            )
    except asyncpg.PostgresError as exc:
        refusal = _refusal(exc)
        if refusal == "full":
            raise await session_full(business_id, session_id, seats) from None
        if refusal == "closed":
            raise InvalidTransition("That session was cancelled.") from None
        raise
    if row is None:
        raise NotFound("No such session at this business.")
    return dict(row), token


async def move_seat_booking(
    principal: Principal,
    booking_id: UUID,
    session_id: UUID,
    *,
    seats: int | None = None,
    override_reason: str | None = None,
    expected_version: int | None = None,
) -> dict[str, Any]:
    """Move a seat booking to another session of its service (and/or change its party
    size) in one UPDATE: the old seats are released and the new ones taken by the same
    statement, so the customer never holds neither - and never both."""
    try:
        async with db.transaction() as conn:
            row = await lock_booking(conn, booking_id)
            check_access(principal, row)
            if principal.kind != "customer":
                principal.require("bookings:change", row["business_id"])
            check_version(row, expected_version)
            if row["session_id"] is None:
                raise InvalidInput(
                    "That booking is not a seat in a session; change its time instead.",
                    field="session_id",
                )
            check_changeable(row["status"]).enforce()
            target = await session_row(conn, row["business_id"], session_id)
            if target["service_id"] != row["service_id"]:
                raise InvalidInput(
                    "Seats move only between sessions of the same service.", field="session_id"
                )
            if target["status"] != "scheduled":
                raise InvalidTransition("That session was cancelled.")
            party = seats or row["seats"]
            if party > target["capacity"]:
                raise InvalidInput(
                    f"The party ({party}) is larger than the session ({target['capacity']} seats).",
                    field="seats",
                )
            decision = decide_change(
                await load_policy(conn, row["business_id"]),
                BookingFacts.from_row(row),
                actor=actor(principal),
                now=datetime.now(UTC),
                new_starts_at=target["starts_at"],
                override_reason=override_reason,
            ).enforce()
            moved = await move_seats(conn, row, target, party)
            await record_event(
                conn,
                moved,
                "booking.changed",
                principal,
                principal.default_channel,
                from_status=row["status"],
                changes={
                    key: {"from": row[key], "to": moved[key]}
                    for key in ("session_id", "seats", "starts_at", "staff_id")
                    if row[key] != moved[key]
                },
                reason=decision.history_reason(),
                policy_override=decision.policy_override,
            )
    except asyncpg.PostgresError as exc:
        if _refusal(exc) == "full":
            raise await session_full(
                row["business_id"],
                session_id,
                seats or row["seats"],
                detail="Not enough seats left there; your booking is unchanged.",
            ) from None
        raise
    return dict(moved)


@dataclass(frozen=True, slots=True)
class ClassCancelled:
    """What cancelling a class did: the holds released at once, the attendees' bookings
    put at risk and the reschedule offer made to each."""

    session: dict[str, Any]
    released: list[UUID]
    affected: list[UUID]
    offers: list[dict[str, Any]]


async def cancel_session(
    principal: Principal, business_id: UUID, session_id: UUID, reason: str
) -> ClassCancelled:
    """Cancel a class, in one transaction: the session's staff and room are released,
    seats merely held are released, and each attendee's booking is put at risk with a
    reschedule offer holding their party's seats in the next sessions of the class (the
    lost-slot recovery of :mod:`booking.guarantee.offers`; accepting moves the seats,
    expiry gives the held seats back and tells the customer and the business)."""
    _require_staff(principal, business_id)

    async def attempt() -> ClassCancelled:
        released: list[UUID] = []
        async with db.transaction() as conn:
            session = await session_row(conn, business_id, session_id, lock=True)
            if session["status"] != "scheduled":
                raise InvalidTransition("That session is already cancelled.")
            row = await conn.fetchrow(
                f"UPDATE session s SET status = 'cancelled', version = version + 1 "
                f"WHERE business_id = $1 AND id = $2 RETURNING {SESSION_COLUMNS}",
                business_id,
                session_id,
            )
            attendees = await conn.fetch(
                f"SELECT {BOOKING_COLUMNS} FROM booking b WHERE b.business_id = $1 "
                "AND b.session_id = $2 AND b.status IN ('held', 'pending', 'confirmed') "
                "ORDER BY b.id FOR UPDATE",
                business_id,
                session_id,
            )
            label = f"class cancelled: {reason}" if reason else "class cancelled"
            offers: list[dict[str, Any]] = []
            for attendee in attendees:
                if attendee["status"] != "held":
                    offers.append(await open_lost_slot_offer(conn, attendee, label, principal))
                    continue
                updated = await set_status(conn, attendee["id"], "cancelled", cancel_reason=reason)
                await record_event(
                    conn,
                    updated,
                    "booking.cancelled",
                    principal,
                    principal.default_channel,
                    from_status="held",
                    reason=reason,
                )
                released.append(attendee["id"])
        assert row is not None
        return ClassCancelled(
            session=dict(row),
            released=released,
            affected=[a["id"] for a in attendees if a["status"] != "held"],
            offers=offers,
        )

    # Two classes cancelled at once, each holding seats in the other for its attendees,
    # can deadlock on the two sessions' rows; PostgreSQL aborts one, which runs again.
    return await db.retry_deadlocks(attempt)
