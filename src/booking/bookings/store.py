"""The one module that writes a booking: its row, its history event and its outbox entry.

Every path that creates, moves or changes the status of a booking writes through
here, so the columns read back (:data:`BOOKING_COLUMNS`), the history columns and
the events that reach the outbox are spelled once. The set of statuses that hold
time is :data:`booking.bookings.status.ACTIVE`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from booking.access.principal import Principal
from booking.availability.context import ServiceContext
from booking.bookings.references import new_reference_codes
from booking.errors import NotFound
from booking.telemetry.context import traced_payload
from booking.wire_time import stored_json

# Events that matter outside: they go to the outbox for SMS and partner webhooks.
OUTBOX_EVENTS = frozenset(
    {
        "booking.created",
        "booking.confirmed",
        "booking.changed",
        "booking.cancelled",
        "booking.checked_in",
        "booking.completed",
        "booking.no_show",
    }
)
BOOKING_COLUMNS = """
    b.id, b.business_id, b.staff_id, b.resource_id, b.service_id, b.customer_id, b.partner_id,
    b.status, b.channel, b.reference_code, b.starts_at, b.ends_at, b.blocked_from, b.blocked_until,
    b.version, b.change_count, b.hold_expires_at, b.cancel_reason, b.notes, b.created_by,
    b.created_at, b.updated_at, b.session_id, b.seats, b.series_id, b.is_sequence
"""


async def record_event(
    conn: asyncpg.Connection,
    booking: asyncpg.Record | dict[str, Any],
    event: str,
    principal: Principal,
    channel: str,
    *,
    from_status: str | None = None,
    changes: dict[str, Any] | None = None,
    reason: str | None = None,
    policy_override: bool = False,
) -> None:
    """Append the journey event and, when it matters outside, its outbox row
    (one statement: the outbox insert rides on the history insert as a CTE)."""
    payload_changes = stored_json(changes or {})
    history_args = (
        booking["id"],
        booking["business_id"],
        event,
        from_status,
        booking["status"],
        principal.kind,
        principal.id,
        channel,
        payload_changes,
        reason,
        policy_override,
    )
    if event not in OUTBOX_EVENTS:
        await conn.execute(f"INSERT INTO booking_history {_HISTORY_VALUES}", *history_args)
        return
    payload = {
        "event": event,
        "booking_id": str(booking["id"]),
        "version": booking["version"],
        "status": booking["status"],
        "starts_at": booking["starts_at"].isoformat(),
        "changes": changes or {},
        "actor": principal.actor_label,
    }
    traced_payload(payload)
    await conn.execute(
        f"""
        WITH history AS (INSERT INTO booking_history {_HISTORY_VALUES})
        INSERT INTO outbox (business_id, topic, aggregate_id, payload)
        VALUES ($2, $3, $1, $12::jsonb)
        """,
        *history_args,
        stored_json(payload),
    )


_HISTORY_VALUES = """
    (booking_id, business_id, event, from_status, to_status, actor_type, actor_id, channel,
     changes, reason, policy_override)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11)
"""


def blocked_range(
    context: ServiceContext, starts_at: datetime
) -> tuple[datetime, datetime, datetime]:
    ends_at = starts_at + context.shape.duration
    return (
        ends_at,
        starts_at - context.shape.buffer_before,
        ends_at + context.shape.buffer_after,
    )


async def insert_active(
    conn: asyncpg.Connection,
    context: ServiceContext,
    staff_ids: Sequence[UUID],
    starts_at: datetime,
    *,
    status: str,
    channel: str,
    principal: Principal,
    event: str,
    customer_id: UUID | None = None,
    customer: tuple[str, str, str] | None = None,
    hold_expires_at: datetime | None = None,
    hold_token_hash: bytes | None = None,
    notes: str = "",
    checked: bool = False,
    resource_ids: Sequence[UUID] = (),
    payload_extra: dict[str, Any] | None = None,
) -> asyncpg.Record | None:
    """Insert the row for the first combination the database lets have it, with its event.

    One round trip to ``booking_place`` (``bookings/sql/booking_place.sql``): upsert
    ``customer`` (name, E.164 phone, locale; already validated), expire stale holds on
    the candidates (the lazy release), insert the row with the first member of
    ``staff_ids`` (and of ``resource_ids``, when the service needs one) whose
    allocations ``allocation_no_overlap`` accepts - time off is a block allocation, so
    the database refuses it too - retry a reference-code clash with the next code, then
    append the history event and outbox row exactly as :func:`record_event` writes them.
    None when every combination is taken.

    ``checked``: pass ``context.config_version`` so the function first raises SQLSTATE
    ``BK001`` unless it is still the business's (see ``placing.with_context``).
    """
    ends_at, blocked_from, blocked_until = blocked_range(context, starts_at)
    payload = None
    if event in OUTBOX_EVENTS:  # booking_id, version and status are added by the function
        payload = json.dumps(
            traced_payload(
                {
                    "event": event,
                    "starts_at": starts_at.isoformat(),
                    "changes": {},
                    "actor": principal.actor_label,
                }
                | (payload_extra or {})
            )
        )
    name, phone, locale = customer if customer is not None else (None, None, None)
    return await conn.fetchrow(
        _PLACE,
        context.business_id,
        context.service_id,
        list(staff_ids),
        list(resource_ids),
        starts_at,
        ends_at,
        blocked_from,
        blocked_until,
        status,
        channel,
        new_reference_codes(REFERENCE_TRIES),
        event,
        principal.kind,
        principal.id,
        principal.actor_label,
        customer_id,
        principal.partner_id,
        name,
        phone,
        locale,
        hold_expires_at,
        hold_token_hash,
        notes,
        payload,
        context.config_version if checked else None,
    )


REFERENCE_TRIES = 6  # codes offered to booking_place: a clash retries with the next
_PLACE = f"""
    SELECT {BOOKING_COLUMNS} FROM booking_place(
        p_business_id => $1, p_service_id => $2, p_staff_ids => $3, p_resource_ids => $4,
        p_starts_at => $5, p_ends_at => $6, p_blocked_from => $7, p_blocked_until => $8,
        p_status => $9, p_channel => $10, p_codes => $11, p_event => $12,
        p_actor_type => $13, p_actor_id => $14, p_created_by => $15,
        p_customer_id => $16, p_partner_id => $17, p_customer_name => $18,
        p_customer_phone => $19, p_customer_locale => $20, p_hold_expires_at => $21,
        p_hold_token_hash => $22, p_notes => $23, p_outbox_payload => $24::jsonb,
        p_config_version => $25) AS b
"""
STALE_CONTEXT = "BK001"  # booking_place: the business's rules moved since they were read


async def move(
    conn: asyncpg.Connection,
    row: asyncpg.Record | dict[str, Any],
    context: ServiceContext,
    staff_ids: Sequence[UUID],
    starts_at: datetime,
    *,
    principal: Principal,
    channel: str,
    resource_ids: Sequence[UUID] = (),
    reason: str | None = None,
    policy_override: bool = False,
    count_change: bool = True,
) -> asyncpg.Record | None:
    """Move the locked booking ``row`` to ``starts_at`` on ``context``'s service, with the
    first combination of ``staff_ids`` (and ``resource_ids``) the database lets have it.

    One round trip to ``booking_move`` (``bookings/sql/booking_move.sql``): stale holds
    on the new place expire, the row moves and its allocations with it (the old place
    is released by the same statement), and the ``booking.changed`` history event and
    outbox row are appended as :func:`record_event` writes them (the function adds the
    staff and resource changes, the version and the status). None when all are taken.
    """
    ends_at, blocked_from, blocked_until = blocked_range(context, starts_at)
    known = {
        key: {"from": row[key], "to": value}
        for key, value in (
            ("starts_at", starts_at),
            ("ends_at", ends_at),
            ("service_id", context.service_id),
        )
        if row[key] != value
    }
    payload = traced_payload(
        {
            "event": "booking.changed",
            "starts_at": starts_at.isoformat(),
            "actor": principal.actor_label,
        }
    )
    return await conn.fetchrow(
        _MOVE,
        row["id"],
        row["business_id"],
        context.service_id,
        list(staff_ids),
        list(resource_ids),
        starts_at,
        ends_at,
        blocked_from,
        blocked_until,
        stored_json(known),
        row["status"],
        principal.kind,
        principal.id,
        channel,
        json.dumps(payload),
        reason,
        policy_override,
        count_change,
    )


_MOVE = f"""
    SELECT {BOOKING_COLUMNS} FROM booking_move(
        p_booking_id => $1, p_business_id => $2, p_service_id => $3, p_staff_ids => $4,
        p_resource_ids => $5, p_starts_at => $6, p_ends_at => $7, p_blocked_from => $8,
        p_blocked_until => $9, p_changes => $10::jsonb, p_from_status => $11,
        p_actor_type => $12, p_actor_id => $13, p_channel => $14,
        p_outbox_payload => $15::jsonb, p_reason => $16, p_policy_override => $17,
        p_count_change => $18) AS b
"""


async def insert_seats(
    conn: asyncpg.Connection,
    business_id: UUID,
    session_id: UUID,
    seats: int,
    *,
    status: str,
    channel: str,
    principal: Principal,
    event: str,
    customer: tuple[str, str, str] | None = None,
    hold_expires_at: datetime | None = None,
    hold_token_hash: bytes | None = None,
    notes: str = "",
) -> asyncpg.Record | None:
    """``seats`` in a group session for a new booking or hold, with its event.

    One round trip to ``booking_place_seats`` (``bookings/sql/booking_place_seats.sql``):
    stale holds on the session expire, the row is inserted at the session's time and
    its trigger counts the seats on the session's row, where
    ``session_seats_within_capacity`` refuses what does not fit (SQLSTATE 23514, raised;
    :data:`SESSION_FULL` names the constraint). None when there is no such session.
    """
    payload = None
    if event in OUTBOX_EVENTS:
        payload = json.dumps({"event": event, "changes": {}, "actor": principal.actor_label})
    name, phone, locale = customer if customer is not None else (None, None, None)
    return await conn.fetchrow(
        _PLACE_SEATS,
        business_id,
        session_id,
        seats,
        status,
        channel,
        new_reference_codes(REFERENCE_TRIES),
        event,
        principal.kind,
        principal.id,
        principal.actor_label,
        principal.partner_id,
        name,
        phone,
        locale,
        hold_expires_at,
        hold_token_hash,
        notes,
        payload,
    )


SESSION_FULL = "session_seats_within_capacity"  # the CHECK that refuses a seat too many
SESSION_CLOSED = "BK002"  # session_seats_sync: seats asked of a cancelled session
_PLACE_SEATS = f"""
    SELECT {BOOKING_COLUMNS} FROM booking_place_seats(
        p_business_id => $1, p_session_id => $2, p_seats => $3, p_status => $4,
        p_channel => $5, p_codes => $6, p_event => $7, p_actor_type => $8,
        p_actor_id => $9, p_created_by => $10, p_partner_id => $11,
        p_customer_name => $12, p_customer_phone => $13, p_customer_locale => $14,
        p_hold_expires_at => $15, p_hold_token_hash => $16, p_notes => $17,
        p_outbox_payload => $18::jsonb) AS b
"""


async def move_seats(
    conn: asyncpg.Connection,
    row: asyncpg.Record | dict[str, Any],
    session: asyncpg.Record | dict[str, Any],
    seats: int,
    *,
    count_change: bool = True,
) -> asyncpg.Record:
    """Move the locked seat booking ``row`` to ``session`` with ``seats`` (one UPDATE:
    its trigger releases the old seats and takes the new ones in the same statement;
    the capacity CHECK may refuse it, 23514). The caller records the event; an
    accepted reschedule offer is not one of the customer's changes (``count_change``)."""
    moved = await conn.fetchrow(
        f"""
        UPDATE booking b SET session_id = $3, seats = $4, service_id = $5, staff_id = $6,
            resource_id = $7, starts_at = $8, ends_at = $9, blocked_from = $10,
            blocked_until = $11, version = version + 1,
            change_count = change_count + CASE WHEN $12 THEN 1 ELSE 0 END,
            updated_at = now()
        WHERE business_id = $1 AND id = $2 RETURNING {BOOKING_COLUMNS}
        """,
        row["business_id"],
        row["id"],
        session["id"],
        seats,
        session["service_id"],
        session["staff_id"],
        session["resource_id"],
        session["starts_at"],
        session["ends_at"],
        session["blocked_from"],
        session["blocked_until"],
        count_change,
    )
    assert moved is not None
    return moved


async def annotate_outbox(
    conn: asyncpg.Connection, booking: asyncpg.Record, topic: str, extra: dict[str, Any]
) -> None:
    """Add ``extra`` to the uncommitted outbox entry ``topic`` of ``booking`` written in
    this transaction (the relay only ever sees committed rows): a series marks the one
    occurrence whose message announces the whole series."""
    await conn.execute(
        "UPDATE outbox SET payload = payload || $4::jsonb WHERE business_id = $1 "
        "AND aggregate_id = $2 AND topic = $3",
        booking["business_id"],
        booking["id"],
        topic,
        json.dumps(extra),
    )


async def lock_booking(conn: asyncpg.Connection, booking_id: UUID) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"SELECT {BOOKING_COLUMNS}, b.hold_token_hash FROM booking b WHERE b.id = $1 FOR UPDATE",
        booking_id,
    )
    if row is None:
        raise NotFound("No such booking.")
    return row


async def set_status(
    conn: asyncpg.Connection, booking_id: UUID, status: str, *, cancel_reason: str | None = None
) -> asyncpg.Record:
    """Move a locked booking to ``status`` (the caller checked the status machine)."""
    row = await conn.fetchrow(
        f"""
        UPDATE booking b SET status = $2, version = version + 1, updated_at = now(),
            cancel_reason = CASE WHEN $2 = 'cancelled' THEN $3 ELSE cancel_reason END
        WHERE id = $1 RETURNING {BOOKING_COLUMNS}
        """,
        booking_id,
        status,
        cancel_reason,
    )
    assert row is not None
    return row


async def confirm_held(
    conn: asyncpg.Connection, hold_id: UUID, status: str, customer_id: UUID, notes: str
) -> asyncpg.Record:
    """A locked hold becomes a booking for ``customer_id``: same row, id and time."""
    row = await conn.fetchrow(
        f"""
        UPDATE booking b SET status = $2, customer_id = $3, hold_expires_at = NULL,
            hold_token_hash = NULL, version = version + 1, updated_at = now(),
            notes = $4
        WHERE id = $1 RETURNING {BOOKING_COLUMNS}
        """,
        hold_id,
        status,
        customer_id,
        notes,
    )
    assert row is not None
    return row


async def release_held(conn: asyncpg.Connection, hold_id: UUID) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"""
        UPDATE booking b SET status = 'cancelled', cancel_reason = 'hold released',
            hold_token_hash = NULL, version = version + 1, updated_at = now()
        WHERE id = $1 RETURNING {BOOKING_COLUMNS}
        """,
        hold_id,
    )
    assert row is not None
    return row


async def expire_held(conn: asyncpg.Connection, batch: int) -> list[asyncpg.Record]:
    """Expire up to ``batch`` holds past their TTL, skipping rows another writer holds."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""
        UPDATE booking b SET status = 'expired', version = version + 1, updated_at = now(),
               hold_token_hash = NULL
        WHERE id IN (SELECT id FROM booking WHERE status = 'held' AND hold_expires_at <= now()
                     ORDER BY hold_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING {BOOKING_COLUMNS}
        """,
        batch,
    )
    return rows
