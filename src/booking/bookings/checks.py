"""Checks on a request before anything is written: times, channels, access, versions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from booking.access.principal import Principal
from booking.availability.context import ServiceContext
from booking.bookings import policy
from booking.errors import InvalidInput, NotFound, PreconditionRequired, VersionMismatch

CHANNELS = ("web", "mobile", "front_desk", "partner", "phone", "sms", "system")


@dataclass(frozen=True, slots=True)
class CustomerInput:
    name: str
    phone: str
    locale: str | None = None


def as_utc(moment: datetime, field: str) -> datetime:
    """Aware times only; work in UTC so arithmetic is absolute, never wall-clock."""
    require_aware(moment, field)
    return moment.astimezone(UTC)


def require_aware(moment: datetime, field: str) -> None:
    if moment.tzinfo is None:
        raise InvalidInput(
            f"'{field}' needs an offset, e.g. 2026-03-29T09:00:00+02:00.", field=field
        )


def channel_for(principal: Principal, requested: str | None) -> str:
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


def check_access(principal: Principal, row: asyncpg.Record | dict[str, Any]) -> None:
    if not principal.may_see_booking(row["business_id"], row["id"], row["partner_id"]):
        raise NotFound("No such booking.")


def check_version(row: asyncpg.Record | dict[str, Any], expected: int | None) -> None:
    if expected is not None and row["version"] != expected:
        raise VersionMismatch(
            f"The booking is at version {row['version']}, not {expected}; read it again.",
            current_version=row["version"],
        )


async def require_if_match(
    conn: asyncpg.Connection,
    principal: Principal,
    row: asyncpg.Record | dict[str, Any],
    expected: int | None,
) -> None:
    """428 when the business makes If-Match mandatory for its staff's changes and the
    caller (a staff key) sent none: a desk that omits it could overwrite a change it
    never saw. Customers, partners and the system are not bound by it."""
    if expected is not None or not principal.is_staff:
        return
    if await conn.fetchval(
        "SELECT require_if_match FROM business WHERE id = $1", row["business_id"]
    ):
        raise PreconditionRequired(
            "This business requires If-Match for staff changes: read the booking and send "
            'its ETag, e.g. If-Match: "3".',
            current_version=row["version"],
        )


def actor(principal: Principal) -> policy.Actor:
    """The caller as the change policy names actors."""
    return policy.actor_of(principal.kind, principal.role)


def check_notice(context: ServiceContext, principal: Principal, starts_at: datetime) -> None:
    """A new booking or hold at ``starts_at``: the policy decides (past, minimum notice)."""
    policy.decide_new_booking(
        context.min_notice, actor=actor(principal), now=datetime.now(UTC), starts_at=starts_at
    ).enforce()


async def load_policy(conn: asyncpg.Connection, business_id: UUID) -> policy.BusinessPolicy:
    """The business's change policy (the columns policy.POLICY_COLUMNS names)."""
    row = await conn.fetchrow(
        f"SELECT {policy.POLICY_COLUMNS} FROM business b WHERE b.id = $1", business_id
    )
    if row is None:
        raise NotFound("No such business.")
    return policy.BusinessPolicy.from_row(row)
