"""Booking rules: holds, bookings, status changes and ticket changes.

Every function opens one transaction, checks what it can for a friendly
answer, writes the row, its history and its outbox entry together, and leaves
the last word to PostgreSQL: the exclusion constraint ``booking_no_staff_overlap``
decides whether a time is free. Its SQLSTATE 23P01 becomes :class:`SlotTaken`
with the nearest free alternatives.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.availability.service import (
    ServiceContext,
    alternatives_near,
    cached_service_context,
    earliest_slots,
    forget_service_context,
    load_calendars,
    load_service_context,
    slot_json,
)
from booking.availability.slots import fits_working_hours
from booking.bookings.policy import CHANGEABLE, ChangePolicy, next_status, policy_breaches
from booking.customers import customer_fields, upsert_customer
from booking.errors import (
    Forbidden,
    HoldExpired,
    HoldTokenInvalid,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PolicyViolation,
    SlotTaken,
    VersionMismatch,
)

REFERENCE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: easy to read out
REFERENCE_LENGTH = 6
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
    b.id, b.business_id, b.staff_id, b.service_id, b.customer_id, b.partner_id, b.status,
    b.channel, b.reference_code, b.starts_at, b.ends_at, b.blocked_from, b.blocked_until,
    b.version, b.change_count, b.hold_expires_at, b.cancel_reason, b.notes, b.created_by,
    b.created_at, b.updated_at
"""
_T = TypeVar("_T")
CHANNELS = ("web", "mobile", "front_desk", "partner", "phone", "sms", "system")


@dataclass(frozen=True, slots=True)
class CustomerInput:
    name: str
    phone: str
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class HoldResult:
    booking: dict[str, Any]
    hold_token: str


def new_reference_code() -> str:
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))


_UNBIASED_BELOW = 256 - 256 % len(REFERENCE_ALPHABET)


def new_reference_codes(count: int) -> list[str]:
    """``count`` codes like :func:`new_reference_code` (uniform over the alphabet:
    random bytes past the last whole multiple of the alphabet are dropped), from one
    call to the system's random source instead of one per character."""
    wanted = count * REFERENCE_LENGTH
    letters: list[str] = []
    while len(letters) < wanted:
        letters += [
            REFERENCE_ALPHABET[byte % len(REFERENCE_ALPHABET)]
            for byte in secrets.token_bytes(wanted + wanted // 4 + 8)
            if byte < _UNBIASED_BELOW
        ]
    return [
        "".join(letters[i : i + REFERENCE_LENGTH]) for i in range(0, wanted, REFERENCE_LENGTH)
    ]


def normalize_reference(raw: str) -> str:
    return raw.strip().upper().replace("-", "").replace(" ", "")


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _as_utc(moment: datetime, field: str) -> datetime:
    """Aware times only; work in UTC so arithmetic is absolute, never wall-clock."""
    _require_aware(moment, field)
    return moment.astimezone(UTC)


def _require_aware(moment: datetime, field: str) -> None:
    if moment.tzinfo is None:
        raise InvalidInput(
            f"'{field}' needs an offset, e.g. 2026-03-29T09:00:00+02:00.", field=field
        )


def _channel_for(principal: Principal, requested: str | None) -> str:
    if requested is None:
        return principal.default_channel
    if requested not in CHANNELS:
        raise InvalidInput(f"Unknown channel {requested!r}.", field="channel")
    allowed = {
        "admin": CHANNELS,
        "staff": ("front_desk", "phone"),
        "partner": ("partner",),
        "app": ("web", "mobile"),
        "customer": ("web", "mobile", "sms"),
        "system": CHANNELS,
    }[principal.kind]
    if requested not in allowed:
        raise InvalidInput(
            f"This caller cannot book through channel {requested!r}.", field="channel"
        )
    return requested


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
    payload_changes = json.dumps(changes or {}, default=str)
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
    await conn.execute(
        f"""
        WITH history AS (INSERT INTO booking_history {_HISTORY_VALUES})
        INSERT INTO outbox (business_id, topic, aggregate_id, payload)
        VALUES ($2, $3, $1, $12::jsonb)
        """,
        *history_args,
        json.dumps(payload, default=str),
    )


_HISTORY_VALUES = """
    (booking_id, business_id, event, from_status, to_status, actor_type, actor_id, channel,
     changes, reason, policy_override)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11)
"""


_SYSTEM_PRINCIPAL = Principal(kind="system", id="hold-release")


def _blocked_range(
    context: ServiceContext, starts_at: datetime
) -> tuple[datetime, datetime, datetime]:
    ends_at = starts_at + context.shape.duration
    return (
        ends_at,
        starts_at - context.shape.buffer_before,
        ends_at + context.shape.buffer_after,
    )


async def _candidate_staff(
    conn: asyncpg.Connection,
    context: ServiceContext,
    staff_id: UUID | None,
    starts_at: datetime,
    ends_at: datetime,
) -> list[UUID]:
    """Staff who offer the service and work at that time, in trial order."""
    if staff_id is not None and staff_id not in context.eligible_staff:
        raise InvalidInput("That member of staff does not offer this service.", field="staff_id")
    wanted = (staff_id,) if staff_id is not None else context.eligible_staff
    if not wanted:
        raise InvalidInput("Nobody offers this service at the moment.", field="service_id")
    calendars = await load_calendars(
        conn, wanted, starts_at, ends_at, with_busy=False, weekly_hours=context.weekly
    )
    working = [
        cal.staff_id
        for cal in calendars
        if fits_working_hours(cal.weekly, context.tz, starts_at, ends_at)
    ]
    if not working:
        raise InvalidInput(
            "That time is outside working hours"
            + (
                " for that member of staff."
                if staff_id
                else " for everyone who offers the service."
            ),
            field="starts_at",
        )
    return working


def _check_notice(context: ServiceContext, principal: Principal, starts_at: datetime) -> None:
    now = datetime.now(UTC)
    if starts_at <= now:
        raise InvalidInput("That time is in the past.", field="starts_at")
    if not principal.is_staff and starts_at < now + context.min_notice:
        minutes = int(context.min_notice.total_seconds() // 60)
        raise InvalidInput(f"Bookings need at least {minutes} minutes' notice.", field="starts_at")


async def _slot_taken(
    context: ServiceContext,
    starts_at: datetime,
    principal: Principal,
    *,
    exclude_booking: UUID | None = None,
    detail: str = "Someone else has just taken that time.",
) -> SlotTaken:
    """A SlotTaken carrying the nearest free alternatives, read after the rollback."""
    async with db.connection() as conn:
        if context.narrowed:  # alternatives may be with anyone who offers the service
            context = await load_service_context(conn, context.business_id, context.service_id)
        nearby = await alternatives_near(
            conn,
            context,
            starts_at,
            apply_notice=not principal.is_staff,
            exclude_booking=exclude_booking,
        )
    return SlotTaken(detail, alternatives=[slot_json(slot, context.tz) for slot in nearby])


async def _insert_active(
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
) -> asyncpg.Record | None:
    """Insert the row for the first staff member the database lets have it, with its event.

    One round trip to ``booking_insert_first`` (migration 2026-11-27T01:00), which
    does what this function once did in up to eight statements: upsert ``customer``
    (name, E.164 phone, locale; already validated), expire stale holds on the time
    (``booking_expire_holds_on``, the lazy release), skip staff with time off, insert (an exclusion
    violation moves on to the next member of staff, a reference-code clash retries
    with the next code), then append the history event and outbox row exactly as
    :func:`record_event` writes them. None when every candidate is taken.

    ``checked``: through ``booking_insert_current`` (migration 2026-11-27T02:00), which
    first raises SQLSTATE ``BK001`` unless ``context.config_version`` is still the
    business's (see :func:`_with_context`).
    """
    ends_at, blocked_from, blocked_until = _blocked_range(context, starts_at)
    payload = None
    if event in OUTBOX_EVENTS:  # booking_id, version and status are added by the function
        payload = json.dumps(
            {
                "event": event,
                "starts_at": starts_at.isoformat(),
                "changes": {},
                "actor": principal.actor_label,
            }
        )
    codes = new_reference_codes(5 * len(staff_ids))
    name, phone, locale = customer if customer is not None else (None, None, None)
    return await conn.fetchrow(
        _INSERT_CURRENT if checked else _INSERT_FIRST,
        *((context.config_version,) if checked else ()),
        context.business_id,
        context.service_id,
        list(staff_ids),
        starts_at,
        ends_at,
        blocked_from,
        blocked_until,
        status,
        channel,
        customer_id,
        principal.partner_id,
        hold_expires_at,
        hold_token_hash,
        notes,
        principal.actor_label,
        codes,
        name,
        phone,
        locale,
        event,
        principal.kind,
        principal.id,
        channel,
        payload,
    )


_INSERT_FIRST = f"""
    SELECT {BOOKING_COLUMNS} FROM booking_insert_first(
        $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
        $17, $18, $19, $20, $21, $22, $23, $24::jsonb) AS b
"""
_INSERT_CURRENT = f"""
    SELECT {BOOKING_COLUMNS} FROM booking_insert_current(
        $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
        $17, $18, $19, $20, $21, $22, $23, $24, $25::jsonb) AS b
"""
STALE_CONTEXT = "BK001"  # booking_insert_current: the business's rules moved since read


async def _with_context(
    business_id: UUID,
    service_id: UUID,
    staff_id: UUID | None,
    attempt: Callable[[asyncpg.Connection, ServiceContext, bool], Awaitable[_T]],
) -> tuple[ServiceContext, _T]:
    """Run ``attempt(conn, context, checked)``: the checks and the one-statement write
    of a new booking or hold, on the service context.

    Outside a transaction the context may come from this process's memory
    (:func:`cached_service_context`): the write is then ``checked`` - it refuses to
    run if the business's rules moved since (SQLSTATE ``BK001``) - and a remembered
    context that made a check fail is not believed either. Either way the attempt
    runs once more on a context read now, unchecked, as a write did before the
    memory existed. One statement per booking instead of two: the context read cost
    PostgreSQL more than the insert (bench/RESULTS.md, 2026-11-27).
    """
    hours_for = (staff_id,) if staff_id else None
    if not db.in_transaction():
        async with db.connection() as conn:
            context, remembered = await cached_service_context(
                conn, business_id, service_id, hours_for=hours_for
            )
            try:
                return context, await attempt(conn, context, True)
            except asyncpg.PostgresError as exc:
                if exc.sqlstate != STALE_CONTEXT:
                    raise
            except InvalidInput:
                if not remembered:
                    raise
        forget_service_context(business_id)
    async with db.connection() as conn:
        context = await load_service_context(conn, business_id, service_id, hours_for=hours_for)
        return context, await attempt(conn, context, False)


async def create_hold(
    principal: Principal,
    business_id: UUID,
    service_id: UUID,
    starts_at: datetime,
    *,
    staff_id: UUID | None = None,
    channel: str | None = None,
) -> HoldResult:
    principal.require("bookings:write", business_id)
    starts_at = _as_utc(starts_at, "starts_at")
    chosen_channel = _channel_for(principal, channel)
    token = secrets.token_urlsafe(24)

    # One function call writes everything (see _with_context for the context read).
    async def attempt(
        conn: asyncpg.Connection, context: ServiceContext, checked: bool
    ) -> asyncpg.Record | None:
        _check_notice(context, principal, starts_at)
        ends_at = starts_at + context.shape.duration
        staff = await _candidate_staff(conn, context, staff_id, starts_at, ends_at)
        return await _insert_active(
            conn,
            context,
            staff,
            starts_at,
            status="held",
            channel=chosen_channel,
            principal=principal,
            event="hold.created",
            hold_expires_at=datetime.now(UTC) + context.hold_ttl,
            hold_token_hash=_token_hash(token),
            checked=checked,
        )

    context, row = await _with_context(business_id, service_id, staff_id, attempt)
    if row is None:
        raise await _slot_taken(context, starts_at, principal)
    return HoldResult(booking=dict(row), hold_token=token)


async def create_booking(
    principal: Principal,
    business_id: UUID,
    service_id: UUID,
    starts_at: datetime,
    customer: CustomerInput,
    *,
    staff_id: UUID | None = None,
    channel: str | None = None,
    notes: str = "",
) -> dict[str, Any]:
    principal.require("bookings:write", business_id)
    starts_at = _as_utc(starts_at, "starts_at")
    chosen_channel = _channel_for(principal, channel)

    # One function call (customer upsert, lazy hold release, insert, history, outbox:
    # see _insert_active) once the context is known (see _with_context).
    async def attempt(
        conn: asyncpg.Connection, context: ServiceContext, checked: bool
    ) -> asyncpg.Record | None:
        _check_notice(context, principal, starts_at)
        ends_at = starts_at + context.shape.duration
        staff = await _candidate_staff(conn, context, staff_id, starts_at, ends_at)
        fields = customer_fields(
            name=customer.name,
            phone=customer.phone,
            locale=customer.locale,
            business_locale=context.locale,
        )
        return await _insert_active(
            conn,
            context,
            staff,
            starts_at,
            status="pending" if context.requires_confirmation else "confirmed",
            channel=chosen_channel,
            principal=principal,
            event="booking.created",
            customer=fields,
            notes=notes,
            checked=checked,
        )

    context, row = await _with_context(business_id, service_id, staff_id, attempt)
    if row is None:
        raise await _slot_taken(context, starts_at, principal)
    return dict(row)


async def _lock_booking(conn: asyncpg.Connection, booking_id: UUID) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"SELECT {BOOKING_COLUMNS}, b.hold_token_hash FROM booking b WHERE b.id = $1 FOR UPDATE",
        booking_id,
    )
    if row is None:
        raise NotFound("No such booking.")
    return row


def _check_access(principal: Principal, row: asyncpg.Record | dict[str, Any]) -> None:
    if not principal.may_see_booking(row["business_id"], row["id"], row["partner_id"]):
        raise NotFound("No such booking.")


def _check_version(row: asyncpg.Record | dict[str, Any], expected: int | None) -> None:
    if expected is not None and row["version"] != expected:
        raise VersionMismatch(
            f"The booking is at version {row['version']}, not {expected}; read it again.",
            current_version=row["version"],
        )


async def confirm_hold(
    principal: Principal,
    hold_id: UUID,
    hold_token: str,
    customer: CustomerInput,
    *,
    notes: str = "",
) -> dict[str, Any]:
    """Turn a live hold into a booking; the row, id and time stay the same."""
    async with db.transaction() as conn:
        row = await _lock_booking(conn, hold_id)
        principal.require("bookings:write", row["business_id"])
        stored = row["hold_token_hash"]
        if stored is None or not hmac.compare_digest(bytes(stored), _token_hash(hold_token)):
            if row["status"] != "held":
                raise InvalidTransition(
                    f"This hold is already {row['status']}.", booking_status=row["status"]
                )
            raise HoldTokenInvalid("The hold token does not match this hold.")
        if row["status"] != "held":
            raise InvalidTransition(
                f"This hold is already {row['status']}.", booking_status=row["status"]
            )
        if row["hold_expires_at"] <= datetime.now(UTC):
            raise HoldExpired("The hold expired; search again and hold a new time.")
        context = await load_service_context(conn, row["business_id"], row["service_id"])
        customer_id = await upsert_customer(
            conn,
            row["business_id"],
            name=customer.name,
            phone=customer.phone,
            locale=customer.locale,
            business_locale=context.locale,
        )
        status = "pending" if context.requires_confirmation else "confirmed"
        updated = await conn.fetchrow(
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
        assert updated is not None
        await record_event(
            conn, updated, "booking.created", principal, row["channel"], from_status="held"
        )
    return dict(updated)


async def release_hold(principal: Principal, hold_id: UUID, hold_token: str) -> dict[str, Any]:
    async with db.transaction() as conn:
        row = await _lock_booking(conn, hold_id)
        principal.require("bookings:write", row["business_id"])
        stored = row["hold_token_hash"]
        if row["status"] != "held":
            raise InvalidTransition(
                f"This hold is already {row['status']}.", booking_status=row["status"]
            )
        if stored is None or not hmac.compare_digest(bytes(stored), _token_hash(hold_token)):
            raise HoldTokenInvalid("The hold token does not match this hold.")
        updated = await conn.fetchrow(
            f"""
            UPDATE booking b SET status = 'cancelled', cancel_reason = 'hold released',
                hold_token_hash = NULL, version = version + 1, updated_at = now()
            WHERE id = $1 RETURNING {BOOKING_COLUMNS}
            """,
            hold_id,
        )
        assert updated is not None
        await record_event(
            conn, updated, "hold.released", principal, row["channel"], from_status="held"
        )
    return dict(updated)


ACTION_SCOPES = {
    "confirm": "bookings:change",
    "cancel": "bookings:cancel",
    "check_in": "bookings:change",
    "complete": "bookings:change",
    "no_show": "bookings:change",
}
ACTION_LABELS = {
    "confirm": "confirmed",
    "cancel": "cancelled",
    "check_in": "checked in",
    "complete": "completed",
    "no_show": "marked as a no-show",
}
STAFF_ONLY_ACTIONS = frozenset({"confirm", "check_in", "complete", "no_show"})


async def transition(
    principal: Principal,
    booking_id: UUID,
    action: str,
    *,
    expected_version: int | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Move a booking along its status machine; illegal moves are refused."""
    async with db.transaction() as conn:
        row = await _lock_booking(conn, booking_id)
        _check_access(principal, row)
        if principal.kind != "customer":
            principal.require(ACTION_SCOPES[action], row["business_id"])
        if action in STAFF_ONLY_ACTIONS and not (principal.is_staff or principal.kind == "system"):
            raise Forbidden("Only the business can do that.")
        _check_version(row, expected_version)
        target = next_status(action, row["status"])
        if target is None:
            raise InvalidTransition(
                f"A {row['status']} booking cannot be {ACTION_LABELS[action]}.",
                booking_status=row["status"],
                action=action,
            )
        if action == "no_show" and datetime.now(UTC) < row["starts_at"]:
            raise InvalidTransition("A no-show can only be recorded after the start time.")
        if action == "cancel" and principal.kind in ("customer", "partner", "app"):
            await _enforce_policy_for_customer(conn, row)
        updated = await conn.fetchrow(
            f"""
            UPDATE booking b SET status = $2, version = version + 1, updated_at = now(),
                cancel_reason = CASE WHEN $2 = 'cancelled' THEN $3 ELSE cancel_reason END
            WHERE id = $1 RETURNING {BOOKING_COLUMNS}
            """,
            booking_id,
            target,
            reason,
        )
        assert updated is not None
        channel = principal.default_channel
        await record_event(
            conn,
            updated,
            f"booking.{target}",
            principal,
            channel,
            from_status=row["status"],
            reason=reason,
        )
    return dict(updated)


async def _enforce_policy_for_customer(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
    cutoff = await conn.fetchval(
        "SELECT change_cutoff_minutes FROM business WHERE id = $1", row["business_id"]
    )
    if datetime.now(UTC) > row["starts_at"] - timedelta(minutes=cutoff):
        raise PolicyViolation(
            f"Cancellations close {cutoff / 60:g} h before the appointment; "
            "please contact the business."
        )


@dataclass(frozen=True, slots=True)
class ChangeRequest:
    starts_at: datetime | None = None
    staff_id: UUID | None = None
    service_id: UUID | None = None
    override_reason: str | None = None


async def change_booking(
    principal: Principal,
    booking_id: UUID,
    change: ChangeRequest,
    *,
    expected_version: int | None = None,
) -> dict[str, Any]:
    """Move a booking to another time, staff member or service in one UPDATE.

    The new time is taken and the old one released by the same statement, so
    the customer always holds exactly one of the two.
    """
    if change.starts_at is None and change.staff_id is None and change.service_id is None:
        raise InvalidInput("Say what to change: starts_at, staff_id or service_id.")
    if change.starts_at is not None:
        change = replace(change, starts_at=_as_utc(change.starts_at, "starts_at"))
    async with db.transaction() as conn:
        row = await _lock_booking(conn, booking_id)
        _check_access(principal, row)
        if principal.kind != "customer":
            principal.require("bookings:change", row["business_id"])
        _check_version(row, expected_version)
        if row["status"] not in CHANGEABLE:
            raise InvalidTransition(
                f"A {row['status']} booking cannot be changed.", booking_status=row["status"]
            )
        context = await load_service_context(
            conn,
            row["business_id"],
            change.service_id or row["service_id"],
            hours_for=(change.staff_id,) if change.staff_id else None,
        )
        now = datetime.now(UTC)
        breaches = policy_breaches(
            ChangePolicy(context.change_cutoff, context.max_changes),
            now=now,
            starts_at=row["starts_at"],
            change_count=row["change_count"],
        )
        override = False
        if breaches:
            if not principal.is_staff:
                raise PolicyViolation(
                    "The change policy does not allow this: " + "; ".join(breaches) + ".",
                    breaches=breaches,
                )
            if not (change.override_reason and change.override_reason.strip()):
                raise PolicyViolation(
                    "This change breaks the change policy ("
                    + "; ".join(breaches)
                    + "); staff may override it by giving override_reason.",
                    breaches=breaches,
                )
            override = True
        new_start = change.starts_at or row["starts_at"]
        if new_start != row["starts_at"]:
            _check_notice(context, principal, new_start)
        elif new_start <= now:
            raise InvalidTransition("The appointment has already started; it cannot be moved.")
        new_end, blocked_from, blocked_until = _blocked_range(context, new_start)
        staff = await _candidate_staff(conn, context, change.staff_id, new_start, new_end)
        if change.staff_id is None and row["staff_id"] in staff:
            # Keep the same person when they are free at the new time.
            staff.remove(row["staff_id"])
            staff.insert(0, row["staff_id"])
        # One round trip (booking_move_first, migration 2026-11-27T01:00): expire stale
        # holds on the new time, skip staff with time off, move the row to the first
        # member of staff the exclusion constraint allows, and append the
        # booking.changed history event and outbox row as record_event writes them
        # (the function adds the staff_id change, the version and the status).
        # No row when every candidate is taken.
        known = {
            key: {"from": row[key], "to": value}
            for key, value in (
                ("starts_at", new_start),
                ("ends_at", new_end),
                ("service_id", context.service_id),
            )
            if row[key] != value
        }
        payload = {
            "event": "booking.changed",
            "starts_at": new_start.isoformat(),
            "actor": principal.actor_label,
        }
        updated = await conn.fetchrow(
            f"""
            SELECT {BOOKING_COLUMNS} FROM booking_move_first(
                $1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15,
                $16::jsonb) AS b
            """,
            booking_id,
            context.service_id,
            staff,
            new_start,
            new_end,
            blocked_from,
            blocked_until,
            row["staff_id"],
            json.dumps(known, default=str),
            row["status"],
            principal.kind,
            principal.id,
            principal.default_channel,
            change.override_reason if override else None,
            override,
            json.dumps(payload),
        )
    if updated is None:
        raise await _slot_taken(
            context,
            new_start,
            principal,
            exclude_booking=booking_id,
            detail="That time is taken; your booking is unchanged.",
        )
    return dict(updated)


async def get_booking(principal: Principal, booking_id: UUID) -> dict[str, Any]:
    async with db.connection() as conn:
        row = await conn.fetchrow(
            f"SELECT {BOOKING_COLUMNS} FROM booking b WHERE b.id = $1", booking_id
        )
    if row is None:
        raise NotFound("No such booking.")
    _check_access(principal, row)
    return dict(row)


async def booking_history(principal: Principal, booking_id: UUID) -> list[dict[str, Any]]:
    await get_booking(principal, booking_id)
    async with db.connection() as conn:
        rows = await conn.fetch(
            """
            SELECT id, occurred_at, event, from_status, to_status, actor_type, actor_id,
                   channel, changes, reason, policy_override
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


STATUSES = (
    "held",
    "pending",
    "confirmed",
    "checked_in",
    "completed",
    "cancelled",
    "no_show",
    "expired",
)


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
            _require_aware(value, name)
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
        _check_access(principal, row)
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


async def sweep_expired_holds(batch: int = 500) -> int:
    """Expire every hold past its TTL (the periodic half of hold release)."""
    async with db.transaction() as conn:
        rows = await conn.fetch(
            f"""
            UPDATE booking b SET status = 'expired', version = version + 1, updated_at = now(),
                   hold_token_hash = NULL
            WHERE id IN (SELECT id FROM booking WHERE status = 'held' AND hold_expires_at <= now()
                         ORDER BY hold_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
            RETURNING {BOOKING_COLUMNS}
            """,
            batch,
        )
        for row in rows:
            await record_event(
                conn, row, "hold.expired", _SYSTEM_PRINCIPAL, "system", from_status="held"
            )
    return len(rows)


async def insert_hold(
    conn: asyncpg.Connection,
    context: ServiceContext,
    staff_ids: Sequence[UUID],
    starts_at: datetime,
    *,
    expires_at: datetime,
    principal: Principal,
    notes: str = "",
) -> dict[str, Any] | None:
    """A held row at ``starts_at`` for the first of ``staff_ids`` the database lets have it,
    inside the caller's transaction (reschedule offers and the waitlist hold times this way);
    None when nobody is free. The hold has no token: only its owner's service can use it."""
    row = await _insert_active(
        conn,
        context,
        staff_ids,
        _as_utc(starts_at, "starts_at"),
        status="held",
        channel="system",
        principal=principal,
        event="hold.created",
        hold_expires_at=expires_at,
        notes=notes,
    )
    return None if row is None else dict(row)
