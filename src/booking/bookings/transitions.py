"""Status changes of a booking: confirm, cancel, check in, complete, no-show."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.bookings.checks import (
    actor,
    check_access,
    check_version,
    load_policy,
    require_if_match,
)
from booking.bookings.policy import BookingFacts, decide_cancel
from booking.bookings.status import TRANSITIONS, next_status
from booking.bookings.store import lock_booking, record_event, set_status
from booking.errors import CheckInTooEarly, Forbidden, InvalidTransition

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
    resumed_since: datetime | None = None,
) -> dict[str, Any]:
    """Move a booking along its status machine; illegal moves are refused.

    ``resumed_since``: a retry of this request whose first run died at that time
    (``idempotency.resumed_since``); a booking that reached the action's status since
    then is answered as it is, as that first run would have answered (its If-Match
    named the version before its own change)."""
    async with db.transaction() as conn:
        row = await lock_booking(conn, booking_id)
        check_access(principal, row)
        if principal.kind != "customer":
            principal.require(ACTION_SCOPES[action], row["business_id"])
        if action in STAFF_ONLY_ACTIONS and not (principal.is_staff or principal.kind == "system"):
            raise Forbidden("Only the business can do that.")
        if (
            resumed_since is not None
            and row["status"] == TRANSITIONS[action][1]
            and row["updated_at"] >= resumed_since
        ):
            return dict(row)
        check_version(row, expected_version)
        await require_if_match(conn, principal, row, expected_version)
        target = next_status(action, row["status"])
        if target is None:
            raise InvalidTransition(
                f"A {row['status']} booking cannot be {ACTION_LABELS[action]}.",
                booking_status=row["status"],
                action=action,
            )
        if action == "no_show" and datetime.now(UTC) < row["starts_at"]:
            raise InvalidTransition("A no-show can only be recorded after the start time.")
        if action == "check_in":
            await _check_in_day_reached(conn, row)
        decision = None
        if action == "cancel":
            decision = decide_cancel(
                await load_policy(conn, row["business_id"]),
                BookingFacts.from_row(row),
                actor=actor(principal),
                now=datetime.now(UTC),
                override_reason=reason,
            ).enforce()
        updated = await set_status(conn, booking_id, target, cancel_reason=reason)
        channel = principal.default_channel
        await record_event(
            conn,
            updated,
            f"booking.{target}",
            principal,
            channel,
            from_status=row["status"],
            reason=reason if decision is None else decision.history_reason(reason),
            policy_override=decision is not None and decision.policy_override,
        )
    return dict(updated)


async def _check_in_day_reached(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
    """Check-in opens at midnight of the appointment's day in the business's zone."""
    zone = ZoneInfo(
        await conn.fetchval("SELECT time_zone FROM business WHERE id = $1", row["business_id"])
    )
    day = row["starts_at"].astimezone(zone).date()
    opens_at = datetime.combine(day, time.min, tzinfo=zone)
    if datetime.now(UTC) < opens_at:
        raise CheckInTooEarly(
            f"Check-in opens on the day of the appointment ({day.isoformat()}, {zone.key}).",
            opens_at=opens_at.isoformat(),
            booking_status=row["status"],
        )
