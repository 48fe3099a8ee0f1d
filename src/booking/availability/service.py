"""Availability from the database: load calendars, then the pure slot search (the service
context it searches on: ``availability.context``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from booking import db
from booking.availability.context import (
    RECENT_EXCEPTIONS,
    ServiceContext,
    cached_service_context,
    forget_service_context,
    load_service_context,
)
from booking.availability.resources import load_resource_busy, pick_resources
from booking.availability.slots import (
    DatedWindow,
    FreeSlot,
    FreeTime,
    HoursRule,
    ServiceShape,
    StaffCalendar,
    WeeklyWindow,
    find_free_slots,
    find_free_times,
    nearest_slots,
)
from booking.errors import InvalidInput

MAX_SEARCH_DAYS = 62
# alternatives_near looks this far either side of the target first.
ALTERNATIVE_RADII = (timedelta(hours=6), timedelta(days=2))
# earliest_slots searches its range in pieces ending this far from its start, then the rest.
EARLIEST_WINDOWS = (timedelta(days=1), timedelta(days=3), timedelta(days=7))


# Busy time of some staff in [$2, $3): bookings that block time (holds past their
# expiry no longer do), the segments of visits, time off and scheduled group sessions.
# PostgreSQL merges overlapping and touching ranges (range_agg), so a full month
# arrives as a few hundred ranges instead of one row per booking, as whole epoch
# seconds (what the slot search works in; floor = int(timestamp())).
_BUSY_SQL = """
    SELECT staff_id, floor(extract(epoch FROM lower(r)))::bigint AS s,
           floor(extract(epoch FROM upper(r)))::bigint AS e
    FROM (
        SELECT staff_id, unnest(range_agg(tstzrange(s, e, '[)'))) AS r
        FROM (
            SELECT staff_id, blocked_from AS s, blocked_until AS e FROM booking
            WHERE staff_id = ANY($1::uuid[])
              AND status IN ('held', 'pending', 'confirmed', 'checked_in')
              AND tstzrange(blocked_from, blocked_until, '[)') && tstzrange($2, $3, '[)')
              AND NOT (status = 'held' AND hold_expires_at <= now())
              AND ($4::uuid IS NULL OR id <> $4)
              AND NOT is_sequence  -- a visit's staff are busy in its segments only
            UNION ALL
            SELECT g.staff_id, g.blocked_from, g.blocked_until FROM booking_segment g
            JOIN booking b ON b.business_id = g.business_id AND b.id = g.booking_id
            WHERE g.staff_id = ANY($1::uuid[])
              AND tstzrange(g.blocked_from, g.blocked_until, '[)') && tstzrange($2, $3, '[)')
              AND booking_holds_time(b.status) AND NOT (b.status = 'held')
              AND ($4::uuid IS NULL OR b.id <> $4)
            UNION ALL
            SELECT staff_id, starts_at, ends_at FROM time_off
            WHERE staff_id = ANY($1::uuid[])
              AND tstzrange(starts_at, ends_at, '[)') && tstzrange($2, $3, '[)')
            UNION ALL  -- a group class holds its teacher, booked seats or not
            SELECT staff_id, blocked_from, blocked_until FROM session
            WHERE staff_id = ANY($1::uuid[]) AND status = 'scheduled'
              AND tstzrange(blocked_from, blocked_until, '[)') && tstzrange($2, $3, '[)')
        ) AS busy
        GROUP BY staff_id
    ) AS merged
    """
# The same, with one more row first (staff_id NULL): the business's config_version in
# the same snapshot ($5), so a search on a remembered context can check it for free.
_BUSY_STAMPED_SQL = (
    "SELECT NULL::uuid AS staff_id, config_version AS s, NULL::bigint AS e "
    "FROM business WHERE id = $5 UNION ALL " + _BUSY_SQL
)
# load_calendars(parallel=True) reads ranges longer than this in two halves at once.
PARALLEL_OVER = timedelta(days=9)


async def load_calendars(
    conn: asyncpg.Connection,
    staff_ids: Sequence[UUID],
    range_start: datetime,
    range_end: datetime,
    *,
    exclude_booking: UUID | None = None,
    with_busy: bool = True,
    weekly_hours: Mapping[UUID, tuple[HoursRule, ...]] | None = None,
    parallel: bool = False,
) -> list[StaffCalendar]:
    """Working hours plus everything that makes time busy, for each staff member.

    Holds past their expiry no longer count, even before the sweeper runs.
    ``with_busy=False`` reads working hours only (the write path checks hours
    and leaves busy time to the exclusion constraint). ``parallel``: a range over
    ``PARALLEL_OVER`` is read in two halves on two pooled connections at once
    (outside a transaction only; the halves are two statements, fine for a search).
    """
    calendars, _ = await _load_calendars(
        conn,
        staff_ids,
        range_start,
        range_end,
        exclude_booking=exclude_booking,
        with_busy=with_busy,
        weekly_hours=weekly_hours,
        parallel=parallel,
    )
    return calendars


async def _load_calendars(
    conn: asyncpg.Connection,
    staff_ids: Sequence[UUID],
    range_start: datetime,
    range_end: datetime,
    *,
    exclude_booking: UUID | None = None,
    with_busy: bool = True,
    weekly_hours: Mapping[UUID, tuple[HoursRule, ...]] | None = None,
    parallel: bool = False,
    stamp_of: UUID | None = None,
    reach: tuple[timedelta, timedelta] = (timedelta(days=1), timedelta(days=1)),
) -> tuple[list[StaffCalendar], int | None]:
    """:func:`load_calendars`, and with ``stamp_of`` that business's config_version,
    read by the same statement as (the first half of) the busy time.

    ``reach``: how far before ``range_start`` and after ``range_end`` busy time is
    read. A search passes its service's reach (:func:`_reach`); the default, a day
    either side, sees the buffers and services of any slot up to a day long."""
    if not staff_ids:
        return [], None
    lo = range_start - reach[0]
    hi = range_end + reach[1]
    weekly: dict[UUID, tuple[HoursRule, ...]]
    if weekly_hours is not None and all(staff_id in weekly_hours for staff_id in staff_ids):
        weekly = {staff_id: weekly_hours[staff_id] for staff_id in staff_ids}
    else:
        weekly = await _weekly_hours(conn, staff_ids)
    if not with_busy:
        return [StaffCalendar(staff_id, weekly[staff_id]) for staff_id in staff_ids], None
    first_sql = _BUSY_SQL if stamp_of is None else _BUSY_STAMPED_SQL
    first_args: tuple[Any, ...] = () if stamp_of is None else (stamp_of,)
    if parallel and hi - lo > PARALLEL_OVER and not db.in_transaction():
        # Two halves of a long range on two connections at once: each is one index
        # range scan over half the rows, and PostgreSQL runs them on two cores. A
        # booking across the middle comes back in both halves; merging joins them.
        middle = lo + (hi - lo) / 2
        async with db.connection() as other:
            first, second = await asyncio.gather(
                conn.fetch(first_sql, list(staff_ids), lo, middle, exclude_booking, *first_args),
                other.fetch(_BUSY_SQL, list(staff_ids), middle, hi, exclude_booking),
            )
        busy = [*first, *second]
    else:
        busy = await conn.fetch(first_sql, list(staff_ids), lo, hi, exclude_booking, *first_args)
    busy_by_staff: dict[UUID, list[tuple[int, int]]] = {s: [] for s in staff_ids}
    stamp: int | None = None
    for staff_id, start, end in busy:
        if staff_id is None:  # _BUSY_STAMPED_SQL's first row
            stamp = start
        else:
            busy_by_staff[staff_id].append((start, end))
    calendars = [
        StaffCalendar(staff_id, weekly[staff_id], busy_seconds=tuple(busy_by_staff[staff_id]))
        for staff_id in staff_ids
    ]
    return calendars, stamp


# Weekly hours, then the dated exceptions (see RECENT_EXCEPTIONS), of some staff.
_HOURS_SQL = f"""
    SELECT staff_id, weekday, NULL::date AS day, opens_at, closes_at FROM working_hours
    WHERE staff_id = ANY($1::uuid[])
    UNION ALL
    SELECT staff_id, NULL, day, opens_at, closes_at FROM staff_hours_exception
    WHERE staff_id = ANY($1::uuid[]) AND day >= {RECENT_EXCEPTIONS}
    ORDER BY 1, 2, 3, 4
"""


async def _weekly_hours(
    conn: asyncpg.Connection, staff_ids: Sequence[UUID]
) -> dict[UUID, tuple[HoursRule, ...]]:
    hours = await conn.fetch(_HOURS_SQL, list(staff_ids))
    weekly: dict[UUID, list[HoursRule]] = {staff_id: [] for staff_id in staff_ids}
    for row in hours:
        if row["day"] is None:
            window: HoursRule = WeeklyWindow(row["weekday"], row["opens_at"], row["closes_at"])
        else:
            window = DatedWindow(row["day"], row["opens_at"], row["closes_at"])
        weekly[row["staff_id"]].append(window)
    return {staff_id: tuple(windows) for staff_id, windows in weekly.items()}


def validate_range(range_start: datetime, range_end: datetime) -> None:
    if range_start.tzinfo is None or range_end.tzinfo is None:
        raise InvalidInput("Times must be RFC 3339 with an offset, e.g. 2026-03-29T09:00:00+02:00.")
    if range_end <= range_start:
        raise InvalidInput("'to' must be after 'from'.")
    if range_end - range_start > timedelta(days=MAX_SEARCH_DAYS):
        raise InvalidInput(f"Search at most {MAX_SEARCH_DAYS} days at a time.")


def pick_staff(context: ServiceContext, staff_id: UUID | None) -> tuple[UUID, ...]:
    if staff_id is None:
        return context.eligible_staff
    if staff_id not in context.eligible_staff:
        raise InvalidInput("That member of staff does not offer this service.", field="staff_id")
    return (staff_id,)


async def _search_calendars(
    conn: asyncpg.Connection,
    context: ServiceContext,
    range_start: datetime,
    range_end: datetime,
    staff_id: UUID | None,
    now: datetime | None,
    exclude_booking: UUID | None,
    apply_notice: bool,
    parallel: bool = False,
    stamp_of: UUID | None = None,
) -> tuple[list[StaffCalendar], datetime, int | None]:
    """The calendars a search looks at, the earliest start it may offer, and with
    ``stamp_of`` that business's config_version (see :func:`_load_calendars`)."""
    validate_range(range_start, range_end)
    staff = pick_staff(context, staff_id)
    moment = now or datetime.now(UTC)
    not_before = moment + context.min_notice if apply_notice else moment
    calendars, stamp = await _load_calendars(
        conn,
        staff,
        range_start,
        range_end,
        exclude_booking=exclude_booking,
        weekly_hours=context.weekly,
        parallel=parallel,
        stamp_of=stamp_of,
        reach=_reach(context.shape),
    )
    return calendars, not_before, stamp


def _reach(shape: ServiceShape) -> tuple[timedelta, timedelta]:
    """The busy time a search of [start, end) must see: a slot starting in the range
    blocks [s - buffer before, s + duration + buffer after), so every busy range
    overlapping [start - buffer before, end + duration + buffer after) and no other.
    (Before 2026-12-03 a day either side was read whatever the service: a one-day
    search read three days of bookings.)"""
    return shape.buffer_before, shape.duration + shape.buffer_after


async def search_slots(
    conn: asyncpg.Connection,
    context: ServiceContext,
    range_start: datetime,
    range_end: datetime,
    *,
    staff_id: UUID | None = None,
    now: datetime | None = None,
    exclude_booking: UUID | None = None,
    apply_notice: bool = True,
    resource_id: UUID | None = None,
) -> list[FreeSlot]:
    calendars, not_before, _ = await _search_calendars(
        conn, context, range_start, range_end, staff_id, now, exclude_booking, apply_notice
    )
    slots = find_free_slots(
        calendars, context.shape, context.tz, range_start, range_end, not_before, context.step
    )
    if context.resource_group is None:
        pick_resources(None, (), resource_id)  # asking for one is bad input
        return slots
    if not context.resources and resource_id is None:
        return []  # the group it needs has none active: no time fits
    resources = pick_resources(context.resource_group, context.resources, resource_id)
    busy = await load_resource_busy(
        conn,
        context.business_id,
        resources,
        range_start,
        range_end,
        exclude_booking=exclude_booking,
    )
    before = int(context.shape.buffer_before.total_seconds())
    span = int((context.shape.duration + context.shape.buffer_after).total_seconds())
    # Every member of staff free at a start shares that start's resource answer.
    first_free: dict[datetime, UUID | None] = {}
    fitting: list[FreeSlot] = []
    for slot in slots:
        if slot.starts_at in first_free:
            resource_id = first_free[slot.starts_at]
        else:
            start = int(slot.starts_at.timestamp())
            free = busy.free(start - before, start + span)
            resource_id = first_free[slot.starts_at] = free[0] if free else None
        if resource_id is not None:
            fitting.append(slot._replace(resource_id=resource_id))
    return fitting


async def free_times(
    business_id: UUID,
    service_id: UUID,
    range_start: datetime,
    range_end: datetime,
    staff_id: UUID | None = None,
) -> tuple[ServiceContext, list[FreeTime]]:
    """The availability answer: each free start with the staff free for it.

    The service context may come from this process's memory
    (:func:`cached_service_context`); the busy-time read then also returns the
    business's config_version, and an answer built on rules that moved since (or a
    remembered context that refused the request) is thrown away and built again on
    the context read now. Saves the context read, one round trip, on most searches.
    """
    async with db.connection() as conn:
        if db.in_transaction():
            context, remembered = await load_service_context(conn, business_id, service_id), False
        else:
            context, remembered = await cached_service_context(conn, business_id, service_id)
        searched: tuple[list[StaffCalendar], datetime, int | None] | None = None
        if remembered:
            try:
                searched = await _search_calendars(
                    conn,
                    context,
                    range_start,
                    range_end,
                    staff_id,
                    None,
                    None,
                    True,
                    parallel=True,
                    stamp_of=business_id,
                )
            except InvalidInput:
                searched = None
            if searched is None or searched[2] != context.config_version:
                forget_service_context(business_id)  # and remember the rules as they are now
                context, _ = await cached_service_context(conn, business_id, service_id)
                searched = None
        if searched is None:
            searched = await _search_calendars(
                conn, context, range_start, range_end, staff_id, None, None, True, parallel=True
            )
    calendars, not_before, _ = searched
    times = find_free_times(
        calendars, context.shape, context.tz, range_start, range_end, not_before, context.step
    )
    return context, times


async def alternatives_near(
    conn: asyncpg.Connection,
    context: ServiceContext,
    target: datetime,
    *,
    limit: int = 5,
    apply_notice: bool = True,
    exclude_booking: UUID | None = None,
) -> list[FreeSlot]:
    """The free slots nearest to ``target`` (either side), any eligible staff.

    The answer is the nearest ``limit`` free slots in [target - 2 days,
    target + 14 days]. It is searched outwards: every slot within ``radius``
    of the target starts inside [target - radius, target + radius], so when
    that window already holds ``limit`` of them they are the nearest of the
    whole range - the same answer for a fraction of the work (a 409 under a
    race is answered hundreds of times at once).
    """
    now = datetime.now(UTC)
    start = max(target - timedelta(days=2), now)
    end = max(target, now) + timedelta(days=14)
    for radius in ALTERNATIVE_RADII if _narrow_search_safe(context) else ():
        low = max(start, target - radius)
        high = min(end, target + radius + timedelta(seconds=1))
        if high <= low:
            continue
        window = await search_slots(
            conn,
            context,
            low,
            high,
            now=now,
            apply_notice=apply_notice,
            exclude_booking=exclude_booking,
        )
        near = [slot for slot in window if abs(slot.starts_at - target) <= radius]
        if len(near) >= limit:
            return nearest_slots(near, target, limit)
    slots = await search_slots(
        conn,
        context,
        start,
        end,
        now=now,
        apply_notice=apply_notice,
        exclude_booking=exclude_booking,
    )
    return nearest_slots(slots, target, limit)


def _narrow_search_safe(context: ServiceContext) -> bool:
    """A narrowed search loads busy time one day either side of its window; it sees
    everything a slot can touch only while the slot's block fits in that day."""
    shape = context.shape
    return shape.buffer_before <= timedelta(days=1) and (
        shape.duration + shape.buffer_after <= timedelta(days=1)
    )


async def earliest_slots(
    conn: asyncpg.Connection,
    context: ServiceContext,
    range_start: datetime,
    range_end: datetime,
    limit: int,
    *,
    now: datetime | None = None,
    apply_notice: bool = True,
    exclude_booking: UUID | None = None,
) -> list[FreeSlot]:
    """The first ``limit`` free slots in [range_start, range_end), in start order.

    Searched in consecutive pieces (see EARLIEST_WINDOWS: the first day, the next two,
    the next four, then the rest), each a search of its own that stops as soon as the
    pieces so far hold ``limit`` slots: slots come out ordered by start and a piece
    finds exactly the starts the whole search finds in it, so they are the first of
    the whole range. No time is searched twice (before 2026-12-03 each window began
    again at ``range_start``, and a booked-up first week cost three searches of it).
    """
    moment = now or datetime.now(UTC)
    widths = EARLIEST_WINDOWS if _narrow_search_safe(context) else ()
    ends = [range_start + width for width in widths if range_start + width < range_end]
    found: list[FreeSlot] = []
    piece_start = range_start
    for piece_end in [*ends, range_end]:
        found += await search_slots(
            conn,
            context,
            piece_start,
            piece_end,
            now=moment,
            apply_notice=apply_notice,
            exclude_booking=exclude_booking,
        )
        if len(found) >= limit:
            break
        piece_start = piece_end
    return found[:limit]


def slot_json(slot: FreeSlot, tz: ZoneInfo) -> dict[str, Any]:
    """A slot for the wire: RFC 3339 in the business's zone."""
    starts_at, ends_at = slot.local(tz)
    return {
        "starts_at": starts_at.isoformat(),
        "ends_at": ends_at.isoformat(),
        "staff_id": str(slot.staff_id),
    } | ({} if slot.resource_id is None else {"resource_id": str(slot.resource_id)})
