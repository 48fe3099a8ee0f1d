"""Working hours (a week of ranges per member of staff), dated exceptions (a closed day,
a special opening), and the lost-slot recovery of bookings a catalog change strands.

Hours are wall-clock times in the business's zone. A change that leaves an active
future booking outside its staff's hours (or with staff who no longer offer its service)
puts it through the guarantee's lost-slot flow - at risk, an offer of held alternatives,
an SMS - in the change's own transaction (:func:`booking.guarantee.offers.
open_lost_slot_offer`, the one time off uses), and the answer lists those bookings.
Each change also writes its ``schedule.changed`` outbox event (:mod:`booking.
schedule_changes`: the whole horizon for the week, the day for an exception) in that
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.availability.service import load_calendars
from booking.availability.slots import fits_working_hours
from booking.bookings.store import BOOKING_COLUMNS
from booking.catalog import audit, rules
from booking.catalog.schemas import (
    DayHours,
    ExceptionOut,
    ExceptionPut,
    HoursOut,
    StrandedBooking,
    TimeRange,
    WeekHours,
)
from booking.errors import InvalidInput, NotFound, VersionMismatch
from booking.guarantee.offers import open_lost_slot_offer
from booking.schedule_changes import day_changed, schedule_changed

MAX_EXCEPTION_AHEAD = timedelta(days=3 * 366)
MAX_EXCEPTION_LIST = timedelta(days=400)


# ---- stranded bookings -----------------------------------------------------------


async def _recover(
    conn: asyncpg.Connection, principal: Principal, rows: Sequence[asyncpg.Record], label: str
) -> list[StrandedBooking]:
    stranded = []
    for row in rows:
        offer = await open_lost_slot_offer(conn, row, label, principal)
        stranded.append(
            StrandedBooking(
                booking_id=row["id"],
                reference_code=row["reference_code"],
                starts_at=row["starts_at"],
                offer_id=offer["id"],
                offer_status=offer["status"],
            )
        )
    return stranded


async def _future_bookings(
    conn: asyncpg.Connection, staff_ids: Sequence[UUID], service_id: UUID | None = None
) -> list[asyncpg.Record]:
    """Active bookings of the staff not yet started and not already at risk, locked.
    (One already at risk is in the lost-slot flow: it is not offered twice.)"""
    return list(
        await conn.fetch(
            f"""
            SELECT {BOOKING_COLUMNS} FROM booking b
            WHERE b.staff_id = ANY($1::uuid[]) AND b.status IN ('pending', 'confirmed')
              AND b.starts_at > now() AND b.at_risk_since IS NULL
              AND ($2::uuid IS NULL OR b.service_id = $2)
            ORDER BY b.starts_at, b.id
            FOR UPDATE
            """,
            list(staff_ids),
            service_id,
        )
    )


async def strand_outside_hours(
    conn: asyncpg.Connection,
    principal: Principal,
    business_id: UUID,
    staff_ids: Sequence[UUID],
    label: str,
) -> list[StrandedBooking]:
    """Recover every future booking of the staff that no longer lies inside their hours
    (weekly hours and dated exceptions as they are now, in this transaction)."""
    if not staff_ids:
        return []
    zone = await conn.fetchval("SELECT time_zone FROM business WHERE id = $1", business_id)
    now = datetime.now(UTC)
    calendars = await load_calendars(conn, staff_ids, now, now, with_busy=False)
    hours = {calendar.staff_id: calendar.weekly for calendar in calendars}
    tz = ZoneInfo(zone)
    lost = [
        row
        for row in await _future_bookings(conn, staff_ids)
        if not fits_working_hours(hours[row["staff_id"]], tz, row["starts_at"], row["ends_at"])
    ]
    return await _recover(conn, principal, lost, label)


async def strand_ineligible(
    conn: asyncpg.Connection,
    principal: Principal,
    business_id: UUID,
    service_id: UUID,
    removed_staff: Sequence[UUID],
    *,
    active: bool,
) -> list[StrandedBooking]:
    """Recover the future bookings of the service with staff who no longer offer it."""
    lost = await _future_bookings(conn, removed_staff, service_id)
    if lost and not active:
        raise InvalidInput(
            "This would strand bookings of an inactive service; reactivate it first.",
            field="staff_ids",
        )
    return await _recover(conn, principal, lost, "staff no longer offers this service")


# ---- weekly hours ----------------------------------------------------------------


def _wall(moment: time) -> str:
    return moment.strftime("%H:%M" if moment.second == 0 else "%H:%M:%S")


def _range_out(opens_at: time, closes_at: time) -> TimeRange:
    return TimeRange(opens_at=_wall(opens_at), closes_at=_wall(closes_at))


def _ranges_in(ranges: Sequence[TimeRange], field: str) -> list[tuple[time, time]]:
    return rules.ranges(
        ((time.fromisoformat(r.opens_at), time.fromisoformat(r.closes_at)) for r in ranges), field
    )


async def _lock_staff(conn: asyncpg.Connection, business_id: UUID, staff_id: UUID) -> None:
    found = await conn.fetchval(
        "SELECT id FROM staff WHERE id = $1 AND business_id = $2 FOR UPDATE",
        staff_id,
        business_id,
    )
    if found is None:
        raise NotFound("No such member of staff at this business.")


async def _staff_exists(conn: asyncpg.Connection, business_id: UUID, staff_id: UUID) -> None:
    if not await conn.fetchval(
        "SELECT 1 FROM staff WHERE id = $1 AND business_id = $2", staff_id, business_id
    ):
        raise NotFound("No such member of staff at this business.")


async def _hours(conn: asyncpg.Connection, staff_id: UUID) -> HoursOut:
    rows = await conn.fetch(
        "SELECT weekday, opens_at, closes_at FROM working_hours WHERE staff_id = $1 "
        "ORDER BY weekday, opens_at, closes_at",
        staff_id,
    )
    days = [DayHours(weekday=weekday, ranges=[]) for weekday in range(7)]
    for row in rows:
        days[row["weekday"]].ranges.append(_range_out(row["opens_at"], row["closes_at"]))
    return HoursOut(staff_id=staff_id, days=days)


async def get_hours(principal: Principal, business_id: UUID, staff_id: UUID) -> HoursOut:
    principal.require("availability:read", business_id)  # hours are availability
    async with db.connection() as conn:
        await _staff_exists(conn, business_id, staff_id)
        return await _hours(conn, staff_id)


def _checked_week(data: WeekHours) -> dict[int, list[tuple[time, time]]]:
    week: dict[int, list[tuple[time, time]]] = {}
    for day in data.days:
        if day.weekday in week:
            raise InvalidInput(f"Weekday {day.weekday} is given twice.", field="days")
        week[day.weekday] = _ranges_in(day.ranges, f"days[{day.weekday}]")
    return week


async def set_hours(
    principal: Principal,
    business_id: UUID,
    staff_id: UUID,
    data: WeekHours,
    if_match: str | None,
    *,
    whole_week: bool,
) -> tuple[HoursOut, list[StrandedBooking]]:
    """Replace the week (``whole_week``) or only the weekdays named."""
    principal.require_manager(business_id)
    week = _checked_week(data)
    if not whole_week and not week:
        raise InvalidInput("Name at least one weekday to change.", field="days")
    async with db.transaction() as conn:
        await _lock_staff(conn, business_id, staff_id)
        before = await _hours(conn, staff_id)
        audit.check_if_match(if_match, before)
        await conn.execute(
            "DELETE FROM working_hours WHERE staff_id = $1 AND ($2 OR weekday = ANY($3))",
            staff_id,
            whole_week,
            list(week),
        )
        await conn.executemany(
            "INSERT INTO working_hours (business_id, staff_id, weekday, opens_at, closes_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            [
                (business_id, staff_id, weekday, opens_at, closes_at)
                for weekday, ranges in week.items()
                for opens_at, closes_at in ranges
            ],
        )
        after = await _hours(conn, staff_id)
        if after != before:  # every week ahead may have gained or lost slots
            await schedule_changed(conn, business_id, "working_hours", aggregate_id=staff_id)
        stranded = await strand_outside_hours(
            conn, principal, business_id, [staff_id], _label("working hours changed", data.reason)
        )
        await audit.record(
            conn, principal, business_id, "hours", staff_id, "changed", audit.diff(before, after)
        )
    return after, stranded


def _label(what: str, reason: str) -> str:
    return f"{what}: {reason}" if reason else what


# ---- dated exceptions ------------------------------------------------------------


def _exception_out(staff_id: UUID, day: date, rows: Sequence[asyncpg.Record]) -> ExceptionOut:
    ranges = [
        _range_out(row["opens_at"], row["closes_at"]) for row in rows if row["opens_at"] is not None
    ]
    return ExceptionOut(
        staff_id=staff_id, day=day, closed=not ranges, ranges=ranges, note=rows[0]["note"]
    )


async def _exception(conn: asyncpg.Connection, staff_id: UUID, day: date) -> ExceptionOut | None:
    rows = await conn.fetch(
        "SELECT opens_at, closes_at, note FROM staff_hours_exception "
        "WHERE staff_id = $1 AND day = $2 ORDER BY opens_at NULLS FIRST",
        staff_id,
        day,
    )
    return _exception_out(staff_id, day, rows) if rows else None


async def list_exceptions(
    principal: Principal, business_id: UUID, staff_id: UUID, first: date | None, last: date | None
) -> list[ExceptionOut]:
    principal.require("availability:read", business_id)  # hours are availability
    async with db.connection() as conn:
        await _staff_exists(conn, business_id, staff_id)
        first = first or await _today(conn, business_id)
        last = last or first + timedelta(days=366)
        if last < first or last - first > MAX_EXCEPTION_LIST:
            raise InvalidInput("'to' must be on or after 'from', at most 400 days on.", field="to")
        rows = await conn.fetch(
            "SELECT day, opens_at, closes_at, note FROM staff_hours_exception "
            "WHERE staff_id = $1 AND day BETWEEN $2 AND $3 ORDER BY day, opens_at NULLS FIRST",
            staff_id,
            first,
            last,
        )
    by_day: dict[date, list[asyncpg.Record]] = {}
    for row in rows:
        by_day.setdefault(row["day"], []).append(row)
    return [_exception_out(staff_id, day, day_rows) for day, day_rows in by_day.items()]


async def get_exception(
    principal: Principal, business_id: UUID, staff_id: UUID, day: date
) -> ExceptionOut:
    principal.require("availability:read", business_id)  # hours are availability
    async with db.connection() as conn:
        await _staff_exists(conn, business_id, staff_id)
        found = await _exception(conn, staff_id, day)
    if found is None:
        raise NotFound("No exception on that day: the weekly hours apply.")
    return found


async def _today(conn: asyncpg.Connection, business_id: UUID) -> date:
    zone = await conn.fetchval("SELECT time_zone FROM business WHERE id = $1", business_id)
    return datetime.now(ZoneInfo(zone)).date()


def _check_precondition(if_match: str | None, before: ExceptionOut | None) -> None:
    if before is not None:
        audit.check_if_match(if_match, before)
    elif if_match is not None:  # RFC 9110: If-Match fails when there is nothing to match
        raise VersionMismatch("There is no exception on that day to match.")


async def put_exception(
    principal: Principal,
    business_id: UUID,
    staff_id: UUID,
    day: date,
    data: ExceptionPut,
    if_match: str | None,
) -> tuple[ExceptionOut, list[StrandedBooking], bool]:
    """Make ``day`` a closed day or a special opening (replacing any exception there);
    the flag says whether it was new."""
    principal.require_manager(business_id)
    if data.closed and data.ranges:
        raise InvalidInput("A closed day has no ranges; send one or the other.", field="ranges")
    if not data.closed and not data.ranges:
        raise InvalidInput(
            "Send closed: true, or the ranges of the special opening.", field="ranges"
        )
    ranges = _ranges_in(data.ranges, "ranges")
    async with db.transaction() as conn:
        await _lock_staff(conn, business_id, staff_id)
        today = await _today(conn, business_id)
        if day < today or day - today > MAX_EXCEPTION_AHEAD:
            raise InvalidInput("The day must be from today up to three years ahead.", field="day")
        before = await _exception(conn, staff_id, day)
        _check_precondition(if_match, before)
        await conn.execute(
            "DELETE FROM staff_hours_exception WHERE staff_id = $1 AND day = $2", staff_id, day
        )
        windows: list[tuple[time | None, time | None]] = [*ranges] or [(None, None)]
        rows: list[tuple[Any, ...]] = [
            (business_id, staff_id, day, opens_at, closes_at, data.note)
            for opens_at, closes_at in windows
        ]
        await conn.executemany(
            "INSERT INTO staff_hours_exception (business_id, staff_id, day, opens_at, "
            "closes_at, note) VALUES ($1, $2, $3, $4, $5, $6)",
            rows,
        )
        after = await _exception(conn, staff_id, day)
        assert after is not None
        await day_changed(conn, business_id, "hours_exception", day, aggregate_id=staff_id)
        what = "closed on that day" if after.closed else "hours changed on that day"
        stranded = await strand_outside_hours(
            conn, principal, business_id, [staff_id], _label(what, data.note)
        )
        await audit.record(
            conn, principal, business_id, "exception", staff_id,
            f"{'changed' if before else 'created'} {day.isoformat()}", audit.diff(before, after),
        )  # fmt: skip
    return after, stranded, before is None


async def delete_exception(
    principal: Principal, business_id: UUID, staff_id: UUID, day: date, if_match: str | None
) -> list[StrandedBooking]:
    """The weekly hours apply on ``day`` again (bookings of a special opening that the
    weekly hours do not cover are recovered)."""
    principal.require_manager(business_id)
    async with db.transaction() as conn:
        await _lock_staff(conn, business_id, staff_id)
        before = await _exception(conn, staff_id, day)
        if before is None:
            raise NotFound("No exception on that day.")
        audit.check_if_match(if_match, before)
        await conn.execute(
            "DELETE FROM staff_hours_exception WHERE staff_id = $1 AND day = $2", staff_id, day
        )
        await day_changed(conn, business_id, "hours_exception", day, aggregate_id=staff_id)
        stranded = await strand_outside_hours(
            conn, principal, business_id, [staff_id], "special opening withdrawn"
        )
        await audit.record(
            conn, principal, business_id, "exception", staff_id,
            f"deleted {day.isoformat()}", audit.diff(before, None),
        )  # fmt: skip
    return stranded
