"""Holds: a time kept for a few minutes while the customer finishes, then confirmed,
released or expired (lazily by the next writer on that time, or by the sweeper)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.availability.context import ServiceContext, load_service_context
from booking.availability.resources import pick_resources
from booking.bookings.checks import CustomerInput, as_utc, channel_for, check_notice
from booking.bookings.placing import candidate_staff, place_or_refuse
from booking.bookings.store import (
    confirm_held,
    expire_held,
    insert_active,
    lock_booking,
    record_event,
    release_held,
)
from booking.customers import upsert_customer
from booking.errors import HoldExpired, HoldTokenInvalid, InvalidTransition, NotFound


@dataclass(frozen=True, slots=True)
class HoldResult:
    booking: dict[str, Any]
    hold_token: str


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_hold_token() -> tuple[str, bytes]:
    """A hold token (shown once) and the hash stored on the hold."""
    token = secrets.token_urlsafe(24)
    return token, _token_hash(token)


_SYSTEM_PRINCIPAL = Principal(kind="system", id="hold-release")


async def create_hold(
    principal: Principal,
    business_id: UUID,
    service_id: UUID,
    starts_at: datetime,
    *,
    staff_id: UUID | None = None,
    channel: str | None = None,
    resource_id: UUID | None = None,
    resumed_since: datetime | None = None,
) -> HoldResult:
    """``resumed_since``: a retry of a hold request that died at that time
    (``idempotency.resumed_since``). Its hold's token is lost with it (only a hash is
    kept), so that hold is released first - it would otherwise keep the time from this
    very retry until it expires - and a new one is made."""
    principal.require("bookings:write", business_id)
    starts_at = as_utc(starts_at, "starts_at")
    chosen_channel = channel_for(principal, channel)
    token = secrets.token_urlsafe(24)
    if resumed_since is not None:
        await _release_orphans(principal, business_id, service_id, starts_at, resumed_since)

    # One function call writes everything (see with_context for the context read).
    async def attempt(
        conn: asyncpg.Connection, context: ServiceContext, checked: bool
    ) -> asyncpg.Record | None:
        check_notice(context, principal, starts_at)
        ends_at = starts_at + context.shape.duration
        staff = await candidate_staff(conn, context, staff_id, starts_at, ends_at)
        resources = pick_resources(context.resource_group, context.resources, resource_id)
        return await insert_active(
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
            resource_ids=resources,
        )

    _, row = await place_or_refuse(business_id, service_id, staff_id, starts_at, principal, attempt)
    return HoldResult(booking=dict(row), hold_token=token)


async def _release_orphans(
    principal: Principal, business_id: UUID, service_id: UUID, starts_at: datetime, since: datetime
) -> None:
    async with db.transaction() as conn:
        orphans = await conn.fetch(
            "SELECT id FROM booking WHERE business_id = $1 AND service_id = $2 "
            "AND starts_at = $3 AND created_by = $4 AND created_at >= $5 AND status = 'held' "
            "ORDER BY id FOR UPDATE",
            business_id,
            service_id,
            starts_at,
            principal.actor_label,
            since,
        )
        for orphan in orphans:
            released = await release_held(conn, orphan["id"])
            await record_event(
                conn, released, "hold.released", principal, released["channel"], from_status="held"
            )


async def _lock_hold(
    conn: asyncpg.Connection, principal: Principal, hold_id: UUID
) -> asyncpg.Record:
    """The hold, locked; another tenant's (or partner's) hold answers like a missing one."""
    row = await lock_booking(conn, hold_id)
    if not principal.may_use_hold(row["business_id"], row["partner_id"]):
        raise NotFound("No such booking.")
    return row


async def confirm_hold(
    principal: Principal,
    hold_id: UUID,
    hold_token: str,
    customer: CustomerInput,
    *,
    notes: str = "",
    resumed_since: datetime | None = None,
) -> dict[str, Any]:
    """Turn a live hold into a booking; the row, id and time stay the same.

    ``resumed_since``: a retry of a confirmation whose request died at that time
    (``idempotency.resumed_since``); a hold confirmed since then is that request's
    booking, answered again instead of refused as already confirmed."""
    principal.require_scope("bookings:write")
    async with db.transaction() as conn:
        row = await _lock_hold(conn, principal, hold_id)
        if (
            resumed_since is not None
            and row["status"] in ("pending", "confirmed")
            and row["updated_at"] >= resumed_since
        ):
            return {k: v for k, v in row.items() if k != "hold_token_hash"}
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
        updated = await confirm_held(conn, hold_id, status, customer_id, notes)
        await record_event(
            conn, updated, "booking.created", principal, row["channel"], from_status="held"
        )
    return dict(updated)


async def release_hold(principal: Principal, hold_id: UUID, hold_token: str) -> dict[str, Any]:
    principal.require_scope("bookings:write")
    async with db.transaction() as conn:
        row = await _lock_hold(conn, principal, hold_id)
        stored = row["hold_token_hash"]
        if row["status"] != "held":
            raise InvalidTransition(
                f"This hold is already {row['status']}.", booking_status=row["status"]
            )
        if stored is None or not hmac.compare_digest(bytes(stored), _token_hash(hold_token)):
            raise HoldTokenInvalid("The hold token does not match this hold.")
        updated = await release_held(conn, hold_id)
        await record_event(
            conn, updated, "hold.released", principal, row["channel"], from_status="held"
        )
    return dict(updated)


async def sweep_expired_holds(batch: int = 500) -> int:
    """Expire every hold past its TTL (the periodic half of hold release)."""
    async with db.transaction() as conn:
        rows = await expire_held(conn, batch)
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
    None when nobody is free (or no resource the service needs is active). The hold has no
    token: only its owner's service can use it."""
    if context.resource_group is not None and not context.resources:
        return None
    row = await insert_active(
        conn,
        context,
        staff_ids,
        as_utc(starts_at, "starts_at"),
        status="held",
        channel="system",
        principal=principal,
        event="hold.created",
        hold_expires_at=expires_at,
        notes=notes,
        resource_ids=context.resources if context.resource_group is not None else (),
    )
    return None if row is None else dict(row)
