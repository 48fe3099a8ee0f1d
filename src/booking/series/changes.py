"""Change this occurrence and every following one of a series, in one transaction.

The caller gives this occurrence's new start (and optionally another member of
staff); every later active occurrence moves by the same number of days to the same
new wall-clock time in the business's zone (so a series stays at 10:00 across a
daylight-saving change). Each occurrence goes through the one single-booking move
(``bookings.changes.change_locked``: the change policy, then one UPDATE under the
allocation constraint); the first refusal rolls everything back and the answer
lists every occurrence, each conflict with the nearest free alternatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.availability.context import load_service_context
from booking.bookings.changes import ChangeRequest, change_locked
from booking.bookings.checks import (
    as_utc,
    check_access,
    check_version,
    load_policy,
    require_if_match,
)
from booking.bookings.policy import check_changeable
from booking.bookings.status import ACTIVE
from booking.bookings.store import BOOKING_COLUMNS
from booking.errors import InvalidInput, NotFound
from booking.series.service import Outcome, SeriesConflict, _add_alternatives


@dataclass(frozen=True, slots=True)
class FollowingChange:
    starts_at: datetime  # this occurrence's new start
    staff_id: UUID | None = None
    override_reason: str | None = None


def shifted(old: datetime, this_old: datetime, this_new: datetime, tz: ZoneInfo) -> datetime:
    """``old`` moved like this occurrence: the same number of local days, to the new
    local time of day (UTC in, UTC out)."""
    days = this_new.astimezone(tz).date() - this_old.astimezone(tz).date()
    local = old.astimezone(tz)
    wall = this_new.astimezone(tz).timetz().replace(tzinfo=None)
    return datetime.combine(local.date() + days, wall, tzinfo=tz).astimezone(this_new.tzinfo)


async def change_following(
    principal: Principal,
    booking_id: UUID,
    change: FollowingChange,
    *,
    expected_version: int | None = None,
) -> tuple[UUID, list[dict[str, Any]]]:
    new_start = as_utc(change.starts_at, "starts_at")
    return await db.retry_deadlocks(
        lambda: _change_once(principal, booking_id, change, new_start, expected_version)
    )


async def _change_once(
    principal: Principal,
    booking_id: UUID,
    change: FollowingChange,
    new_start: datetime,
    expected_version: int | None,
) -> tuple[UUID, list[dict[str, Any]]]:
    moves: list[tuple[asyncpg.Record, Outcome]] = []  # (the occurrence before, its move)
    moved: list[asyncpg.Record] = []
    try:
        async with db.transaction() as conn:
            this, rows = await _lock_following(conn, principal, booking_id)
            check_version(this, expected_version)
            await require_if_match(conn, principal, this, expected_version)
            context = await load_service_context(conn, this["business_id"], this["service_id"])
            policy = await load_policy(conn, this["business_id"])
            targets = {
                row["id"]: shifted(row["starts_at"], this["starts_at"], new_start, context.tz)
                for row in rows
            }
            # Later ones first when moving later (earlier first when moving earlier), so
            # that a shift by a whole period does not collide with the series itself.
            later = new_start > this["starts_at"]
            order = sorted(rows, key=lambda r: r["starts_at"], reverse=later)
            for row in order:
                check_changeable(row["status"]).enforce()
                updated, _, _ = await change_locked(
                    conn,
                    principal,
                    row,
                    ChangeRequest(
                        starts_at=targets[row["id"]],
                        staff_id=change.staff_id,
                        override_reason=change.override_reason,
                    ),
                    policy,
                )
                outcome = Outcome(starts_at=targets[row["id"]], row=updated)
                if updated is None:
                    outcome.reason = "That time is taken."
                moves.append((row, outcome))
                if updated is not None:
                    moved.append(updated)
            if len(moved) < len(rows):
                raise _Refused
    except _Refused:
        await _add_alternatives(context, principal, [o for _, o in moves])
        moves.sort(key=lambda move: move[1].starts_at)
        raise SeriesConflict(
            "Some occurrences cannot move there; nothing was changed.",
            occurrences=[_json(o, before, context.tz, rolled_back=True) for before, o in moves],
        ) from None
    moves.sort(key=lambda move: move[1].starts_at)
    return this["series_id"], [_json(o, before, context.tz) for before, o in moves]


class _Refused(Exception):
    pass


async def _lock_following(
    conn: asyncpg.Connection, principal: Principal, booking_id: UUID
) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
    this = await conn.fetchrow(
        f"SELECT {BOOKING_COLUMNS} FROM booking b WHERE b.id = $1",
        booking_id,
    )
    if this is None:
        raise NotFound("No such booking.")
    check_access(principal, this)
    if principal.kind != "customer":
        principal.require("bookings:change", this["business_id"])
    if this["series_id"] is None:
        raise InvalidInput("That booking is not part of a series.")
    check_changeable(this["status"]).enforce()
    rows = await conn.fetch(
        f"""
        SELECT {BOOKING_COLUMNS} FROM booking b
        WHERE b.business_id = $1 AND b.series_id = $2 AND b.starts_at >= $3
          AND b.status = ANY($4::text[])
        ORDER BY b.starts_at, b.id FOR UPDATE
        """,
        this["business_id"],
        this["series_id"],
        this["starts_at"],
        list(ACTIVE),
    )
    locked = {row["id"]: row for row in rows}
    return locked.get(this["id"], this), rows


def _json(
    outcome: Outcome, before: asyncpg.Record, tz: ZoneInfo, *, rolled_back: bool = False
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "booking_id": str(before["id"]),
        "reference_code": before["reference_code"],
        "from_starts_at": before["starts_at"].astimezone(tz).isoformat(),
        "starts_at": outcome.starts_at.astimezone(tz).isoformat(),
    }
    if outcome.row is None:
        return {
            **item,
            "outcome": "conflict",
            "reason": outcome.reason,
            "alternatives": outcome.alternatives,
        }
    if rolled_back:  # it would have fitted; nothing was written
        return {**item, "outcome": "free"}
    return {**item, "outcome": "moved", "version": outcome.row["version"]}
