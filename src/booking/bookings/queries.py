"""Reading bookings: one booking, its history, a page of a business's bookings, and
the counter's lookup by reference code."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from booking import db
from booking.access.principal import Principal
from booking.availability.context import load_service_context
from booking.availability.service import earliest_slots, slot_json
from booking.bookings.checks import check_access, require_aware
from booking.bookings.references import normalize_reference
from booking.bookings.status import STATUSES
from booking.bookings.store import BOOKING_COLUMNS
from booking.customers import customer_phone
from booking.errors import InvalidInput, NotFound


async def get_booking(principal: Principal, booking_id: UUID) -> dict[str, Any]:
    async with db.connection() as conn:
        row = await conn.fetchrow(
            f"SELECT {BOOKING_COLUMNS} FROM booking b WHERE b.id = $1", booking_id
        )
    if row is None:
        raise NotFound("No such booking.")
    check_access(principal, row)
    return dict(row)


async def made_since(
    principal: Principal,
    business_id: UUID,
    since: datetime,
    *,
    service_id: UUID | None = None,
    starts_at: datetime | None = None,
    session_id: UUID | None = None,
    seats: int | None = None,
    notes: str | None = None,
    phone: str | None = None,
) -> dict[str, Any] | None:
    """The booking ``principal`` made since ``since`` that matches every filter given -
    the service and start, or the class and its seats; the ``notes``; the customer's
    ``phone`` (as the request typed it) - if any: what a request that died after its
    commit did (``idempotency.resumed_since``). The customer matters: the same desk or
    partner may have booked someone else at that time since, and that booking is not
    this request's answer."""
    if starts_at is not None:
        require_aware(starts_at, "starts_at")
    async with db.connection() as conn:
        stored_phone = None
        if phone is not None:
            locale = await conn.fetchval("SELECT locale FROM business WHERE id = $1", business_id)
            try:
                stored_phone = customer_phone(phone, locale or "en")
            except InvalidInput:
                return None  # nothing was booked for it: the request runs and says why
        row = await conn.fetchrow(
            f"SELECT {BOOKING_COLUMNS} FROM booking b WHERE b.business_id = $1 "
            "AND b.created_by = $2 AND b.created_at >= $3 AND b.status <> 'held' "
            "AND ($4::uuid IS NULL OR b.service_id = $4) "
            "AND ($5::timestamptz IS NULL OR b.starts_at = $5) "
            "AND ($6::uuid IS NULL OR b.session_id = $6) "
            "AND ($7::int IS NULL OR b.seats = $7) "
            "AND ($8::text IS NULL OR b.notes = $8) "
            "AND ($9::text IS NULL OR EXISTS (SELECT 1 FROM customer c "
            "WHERE c.business_id = b.business_id AND c.id = b.customer_id AND c.phone = $9)) "
            "ORDER BY b.created_at LIMIT 1",
            business_id,
            principal.actor_label,
            since,
            service_id,
            starts_at,
            session_id,
            seats,
            notes,
            stored_phone,
        )
    if row is None:
        return None
    check_access(principal, row)
    return dict(row)


async def booking_history(principal: Principal, booking_id: UUID) -> list[dict[str, Any]]:
    await get_booking(principal, booking_id)
    async with db.connection() as conn:
        rows = await conn.fetch(
            """
            SELECT id, business_id, occurred_at, event, from_status, to_status, actor_type,
                   actor_id, channel, changes, reason, policy_override
            FROM booking_history WHERE booking_id = $1 ORDER BY id
            """,
            booking_id,
        )
    return [dict(row) | {"changes": json.loads(row["changes"])} for row in rows]


def encode_cursor(starts_at: datetime, booking_id: UUID) -> str:
    raw = f"{starts_at.isoformat()}|{booking_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        starts_raw, id_raw = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
        moment = datetime.fromisoformat(starts_raw)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment, UUID(id_raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "The cursor is not valid; start again without it.", field="cursor"
        ) from exc


@dataclass(frozen=True, slots=True)
class BookingFilter:
    range_from: datetime | None = None
    range_to: datetime | None = None
    staff_id: UUID | None = None
    customer_id: UUID | None = None
    statuses: tuple[str, ...] = ()
    cursor: str | None = None
    limit: int = 50


async def list_bookings(
    principal: Principal, business_id: UUID, filters: BookingFilter
) -> tuple[list[dict[str, Any]], str | None]:
    principal.require("bookings:read", business_id)
    if principal.kind == "app":
        raise NotFound("No such business.")
    for status in filters.statuses:
        if status not in STATUSES:
            raise InvalidInput(f"Unknown status {status!r}.", field="status")
    if not 1 <= filters.limit <= 200:
        raise InvalidInput("limit must be between 1 and 200.", field="limit")
    for name, value in (("from", filters.range_from), ("to", filters.range_to)):
        if value is not None:
            require_aware(value, name)
    if filters.range_from and filters.range_to and filters.range_to <= filters.range_from:
        raise InvalidInput("'to' must be after 'from'.", field="to")
    after = decode_cursor(filters.cursor) if filters.cursor else None
    only_partner = (
        principal.partner_id
        if principal.kind == "partner" and not principal.has_scope("bookings:read_all")
        else None
    )
    async with db.connection() as conn:
        rows = await conn.fetch(
            f"""
            SELECT {BOOKING_COLUMNS} FROM booking b
            WHERE b.business_id = $1
              AND ($2::timestamptz IS NULL OR b.ends_at > $2)
              AND ($3::timestamptz IS NULL OR b.starts_at < $3)
              AND ($4::uuid IS NULL OR b.staff_id = $4)
              AND ($5::uuid IS NULL OR b.customer_id = $5)
              AND (cardinality($6::text[]) = 0 OR b.status = ANY($6::text[]))
              AND ($7::timestamptz IS NULL OR (b.starts_at, b.id) > ($7, $8::uuid))
              AND ($9::uuid IS NULL OR b.partner_id = $9)
            ORDER BY b.starts_at, b.id
            LIMIT $10
            """,
            business_id,
            filters.range_from,
            filters.range_to,
            filters.staff_id,
            filters.customer_id,
            list(filters.statuses),
            after[0] if after else None,
            after[1] if after else None,
            only_partner,
            filters.limit + 1,
        )
    items = [dict(row) for row in rows[: filters.limit]]
    next_cursor = (
        encode_cursor(items[-1]["starts_at"], items[-1]["id"])
        if len(rows) > filters.limit
        else None
    )
    return items, next_cursor


async def rebooking_options(
    principal: Principal, business_id: UUID, reference_code: str, limit: int = 5
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """For the counter: the booking behind a reference code and the earliest free times."""
    principal.require("bookings:change", business_id)
    code = normalize_reference(reference_code)
    if not code.isalnum() or not code.isascii() or len(code) > 12:
        raise NotFound("That is not a booking reference.")
    async with db.connection() as conn:
        row = await conn.fetchrow(
            f"SELECT {BOOKING_COLUMNS} FROM booking b WHERE b.reference_code = $1 "
            "AND b.business_id = $2",
            code,
            business_id,
        )
        if row is None:
            raise NotFound(f"No booking with reference {code} at this business.")
        check_access(principal, row)
        context = await load_service_context(conn, business_id, row["service_id"])
        now = datetime.now(UTC)
        slots = await earliest_slots(
            conn,
            context,
            now,
            now + timedelta(days=14),
            limit,
            now=now,
            apply_notice=not principal.is_staff,
            exclude_booking=row["id"],
        )
    return dict(row), [slot_json(slot, context.tz) for slot in slots]
