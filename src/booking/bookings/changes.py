"""Ticket changes: move a booking to another time, member of staff or service."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.availability.context import ServiceContext, load_service_context
from booking.availability.resources import pick_resources
from booking.bookings.checks import (
    actor,
    as_utc,
    check_access,
    check_version,
    load_policy,
    require_if_match,
)
from booking.bookings.placing import candidate_staff, slot_taken
from booking.bookings.policy import BookingFacts, BusinessPolicy, check_changeable, decide_change
from booking.bookings.store import lock_booking, move
from booking.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class ChangeRequest:
    starts_at: datetime | None = None
    staff_id: UUID | None = None
    service_id: UUID | None = None
    resource_id: UUID | None = None
    override_reason: str | None = None


async def change_booking(
    principal: Principal,
    booking_id: UUID,
    change: ChangeRequest,
    *,
    expected_version: int | None = None,
    resumed_since: datetime | None = None,
) -> dict[str, Any]:
    """Move a booking to another time, staff member or service in one UPDATE.

    The new time is taken and the old one released by the same statement, so
    the customer always holds exactly one of the two.

    ``resumed_since``: a retry of this request whose first run died at that time
    (``idempotency.resumed_since``); a booking changed since then to what is asked is
    answered as it is, its If-Match having named the version before that change.
    """
    if (
        change.starts_at is None
        and change.staff_id is None
        and change.service_id is None
        and change.resource_id is None
    ):
        raise InvalidInput("Say what to change: starts_at, staff_id, service_id or resource_id.")
    if change.starts_at is not None:
        change = replace(change, starts_at=as_utc(change.starts_at, "starts_at"))
    return await db.retry_deadlocks(
        lambda: _change_once(principal, booking_id, change, expected_version, resumed_since)
    )


async def _change_once(
    principal: Principal,
    booking_id: UUID,
    change: ChangeRequest,
    expected_version: int | None,
    resumed_since: datetime | None = None,
) -> dict[str, Any]:
    async with db.transaction() as conn:
        row = await lock_booking(conn, booking_id)
        check_access(principal, row)
        if principal.kind != "customer":
            principal.require("bookings:change", row["business_id"])
        if (
            resumed_since is not None
            and row["updated_at"] >= resumed_since
            and _changes_nothing(row, change, change.starts_at or row["starts_at"])
        ):
            return dict(row)
        check_version(row, expected_version)
        await require_if_match(conn, principal, row, expected_version)
        check_changeable(row["status"]).enforce()  # before reading anything else
        updated, context, new_start = await change_locked(conn, principal, row, change)
    if updated is None:
        raise await slot_taken(
            context,
            new_start,
            principal,
            exclude_booking=booking_id,
            detail="That time is taken; your booking is unchanged.",
        )
    return dict(updated)


async def change_locked(
    conn: asyncpg.Connection,
    principal: Principal,
    row: asyncpg.Record,
    change: ChangeRequest,
    business_policy: BusinessPolicy | None = None,
) -> tuple[asyncpg.Record | None, ServiceContext, datetime]:
    """The one move of a single booking, on a row the caller has locked and checked
    (access, scope, version): the policy decides, then one UPDATE takes the new time and
    releases the old. None when the new time is taken (nothing changed).

    ``change.starts_at`` must already be in UTC. Series changes call this for each
    occurrence inside their own transaction."""
    if row["is_sequence"]:
        raise InvalidInput(
            "That booking is a visit of several services: move it with "
            "POST /v1/bookings/{id}/sequence/move.",
            field="starts_at",
        )
    if row["session_id"] is not None:
        raise InvalidInput(
            "That booking is seats in a class: move it with POST /v1/bookings/{id}/session.",
            field="session_id",
        )
    if business_policy is None:
        business_policy = await load_policy(conn, row["business_id"])
    context = await load_service_context(
        conn,
        row["business_id"],
        change.service_id or row["service_id"],
        hours_for=(change.staff_id,) if change.staff_id else None,
    )
    new_start = change.starts_at or row["starts_at"]
    if _changes_nothing(row, change, new_start):
        # A repeated change (a double click, a retry): the booking already is what was
        # asked. Nothing is written - no new version, history event or SMS - and no rule
        # is checked, since nothing changes.
        return row, context, new_start
    decision = decide_change(
        business_policy,
        BookingFacts.from_row(row),
        actor=actor(principal),
        now=datetime.now(UTC),
        new_starts_at=new_start,
        override_reason=change.override_reason,
    ).enforce()
    new_end = new_start + context.shape.duration
    staff = await candidate_staff(conn, context, change.staff_id, new_start, new_end)
    if change.staff_id is None and row["staff_id"] in staff:
        # Keep the same person when they are free at the new time.
        staff.remove(row["staff_id"])
        staff.insert(0, row["staff_id"])
    resources = list(pick_resources(context.resource_group, context.resources, change.resource_id))
    if change.resource_id is None and row["resource_id"] in resources:
        # ... and the same room, chair or device.
        resources.remove(row["resource_id"])
        resources.insert(0, row["resource_id"])
    updated = await move(
        conn,
        row,
        context,
        staff,
        new_start,
        principal=principal,
        channel=principal.default_channel,
        reason=decision.history_reason(),
        policy_override=decision.policy_override,
        resource_ids=resources,
    )
    return updated, context, new_start


def _changes_nothing(row: asyncpg.Record, change: ChangeRequest, new_start: datetime) -> bool:
    return (
        new_start == row["starts_at"]
        and change.service_id in (None, row["service_id"])
        and change.staff_id in (None, row["staff_id"])
        and change.resource_id in (None, row["resource_id"])
    )
