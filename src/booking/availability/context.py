"""The service context: a service with the business rules that shape its slots, read in
one round trip, and this process's memory of it (checked by the rules stamp)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from booking.availability.slots import DatedWindow, HoursRule, ServiceShape, WeeklyWindow
from booking.errors import NotFound


@dataclass(frozen=True, slots=True)
class ServiceContext:
    """A service with the business rules that shape its slots."""

    business_id: UUID
    service_id: UUID
    tz: ZoneInfo
    shape: ServiceShape
    requires_confirmation: bool
    # The policy's minimum notice (booking.bookings.policy decides with it): read here
    # because the search hides the times inside it, in the same round trip.
    min_notice: timedelta
    step: timedelta
    hold_ttl: timedelta
    eligible_staff: tuple[UUID, ...]
    # Read with the context in the same round trip (never cached across requests):
    # the business's locale and the weekly hours of every eligible member of staff.
    locale: str = "en"
    weekly: Mapping[UUID, tuple[HoursRule, ...]] | None = field(default=None, compare=False)
    # True when loaded for some staff only (``hours_for``): eligible_staff is not everyone.
    narrowed: bool = False
    # business.config_version when read (migration 2026-11-27T02:00): any change to the
    # rules above moves it, so a write can check that this context is still current.
    config_version: int | None = None
    # The group of resources the service needs one of (None: staff only), and the
    # active members of that group in trial order (name, id).
    resource_group: str | None = None
    resources: tuple[UUID, ...] = ()


# The service context in one statement. ``{only}`` narrows the eligible staff (and so
# the hours read) to the staff asked for; the write path names one member of staff,
# and reading every eligible member's hours for it cost PostgreSQL more than the
# booking's own insert did with 128 staff (bench/RESULTS.md, 2026-11-27).
_CONTEXT_SQL = """
    SELECT s.duration_minutes, s.buffer_before_minutes, s.buffer_after_minutes,
           s.requires_confirmation, b.time_zone, b.min_notice_minutes,
           b.slot_step_minutes, b.hold_ttl_seconds, b.locale, b.config_version, el.eligible,
           s.resource_group, el.resources,
           hours.staff_ids, hours.weekdays, hours.opens, hours.closes, dated.exceptions
    FROM service s JOIN business b ON b.id = s.business_id
    CROSS JOIN LATERAL (
        SELECT ARRAY(
            SELECT ss.staff_id FROM service_staff ss JOIN staff st ON st.id = ss.staff_id
            WHERE ss.service_id = s.id AND st.active {only}
            ORDER BY st.name, st.id) AS eligible,
        ARRAY(
            SELECT r.id FROM resource r
            WHERE r.business_id = s.business_id AND r.group_name = s.resource_group
              AND r.active AND r.kind <> 'staff'
            ORDER BY r.name, r.id) AS resources
    ) AS el
    CROSS JOIN LATERAL (
        SELECT array_agg(wh.staff_id ORDER BY wh.staff_id, wh.weekday, wh.opens_at)
                   AS staff_ids,
               array_agg(wh.weekday ORDER BY wh.staff_id, wh.weekday, wh.opens_at)
                   AS weekdays,
               array_agg(wh.opens_at ORDER BY wh.staff_id, wh.weekday, wh.opens_at)
                   AS opens,
               array_agg(wh.closes_at ORDER BY wh.staff_id, wh.weekday, wh.opens_at)
                   AS closes
        FROM working_hours wh
        WHERE wh.staff_id = ANY(el.eligible)
    ) AS hours
    CROSS JOIN LATERAL (
        SELECT array_agg(ARRAY[ex.staff_id::text, ex.day::text, ex.opens_at::text,
                               ex.closes_at::text]) AS exceptions
        FROM staff_hours_exception ex
        WHERE ex.staff_id = ANY(el.eligible) AND ex.day >= {recent}
    ) AS dated
    WHERE s.id = $1 AND s.business_id = $2 AND s.active
"""
# Dated exceptions (staff_hours_exception) from two days ago on: older ones cannot touch
# a slot still bookable, in any zone, even in a context remembered since yesterday.
RECENT_EXCEPTIONS = "CURRENT_DATE - 2"
_CONTEXT_ALL = _CONTEXT_SQL.format(only="", recent=RECENT_EXCEPTIONS)
_CONTEXT_ONLY = _CONTEXT_SQL.format(
    only="AND ss.staff_id = ANY($3::uuid[])", recent=RECENT_EXCEPTIONS
)


async def load_service_context(
    conn: asyncpg.Connection,
    business_id: UUID,
    service_id: UUID,
    *,
    hours_for: Sequence[UUID] | None = None,
) -> ServiceContext:
    """The service, its business's rules and locale, and the weekly hours of its
    eligible staff, in one round trip.

    ``hours_for`` narrows the context to those staff (the write path, which names
    one member of staff): ``eligible_staff`` then holds only those of them who offer
    the service, and ``narrowed`` is set, so a caller needing everyone (the
    alternatives of a 409) loads the full context again.
    """
    if hours_for is None:
        row = await conn.fetchrow(_CONTEXT_ALL, service_id, business_id)
    else:
        row = await conn.fetchrow(_CONTEXT_ONLY, service_id, business_id, list(hours_for))
    if row is None:
        raise NotFound("No such service at this business.")
    eligible = tuple(row["eligible"])
    weekly: dict[UUID, list[HoursRule]] = {staff_id: [] for staff_id in eligible}
    if row["staff_ids"] is not None:
        for staff_id, weekday, opens_at, closes_at in zip(
            row["staff_ids"], row["weekdays"], row["opens"], row["closes"], strict=True
        ):
            weekly[staff_id].append(WeeklyWindow(weekday, opens_at, closes_at))
    for staff_text, day, opens_text, closes_text in row["exceptions"] or ():
        weekly[UUID(staff_text)].append(
            DatedWindow(
                date.fromisoformat(day),
                None if opens_text is None else time.fromisoformat(opens_text),
                None if closes_text is None else time.fromisoformat(closes_text),
            )
        )
    return ServiceContext(
        business_id=business_id,
        service_id=service_id,
        tz=ZoneInfo(row["time_zone"]),
        shape=ServiceShape(
            duration=timedelta(minutes=row["duration_minutes"]),
            buffer_before=timedelta(minutes=row["buffer_before_minutes"]),
            buffer_after=timedelta(minutes=row["buffer_after_minutes"]),
        ),
        requires_confirmation=row["requires_confirmation"],
        min_notice=timedelta(minutes=row["min_notice_minutes"]),
        step=timedelta(minutes=row["slot_step_minutes"]),
        hold_ttl=timedelta(seconds=row["hold_ttl_seconds"]),
        eligible_staff=eligible,
        locale=row["locale"],
        weekly=_shared_hours(weekly),
        narrowed=hours_for is not None,
        config_version=row["config_version"],
        resource_group=row["resource_group"],
        resources=tuple(row["resources"]),
    )


def _shared_hours(
    weekly: Mapping[UUID, list[HoursRule]],
) -> dict[UUID, tuple[HoursRule, ...]]:
    """Each member of staff's hours as a tuple, one tuple object per distinct set: staff
    mostly share their hours, and a check of many staff (any staff at this time?) then
    decides each distinct set once (booking.bookings.placing.candidate_staff)."""
    distinct: dict[tuple[HoursRule, ...], tuple[HoursRule, ...]] = {}
    return {
        staff_id: distinct.setdefault(hours, hours)
        for staff_id, hours in ((staff_id, tuple(windows)) for staff_id, windows in weekly.items())
    }


_CACHE_SIZE = 1024
_contexts: OrderedDict[tuple[UUID, UUID, tuple[UUID, ...] | None], ServiceContext] = OrderedDict()
_reading: dict[tuple[UUID, UUID, tuple[UUID, ...] | None], asyncio.Future[ServiceContext]] = {}


async def cached_service_context(
    conn: asyncpg.Connection,
    business_id: UUID,
    service_id: UUID,
    *,
    hours_for: Sequence[UUID] | None = None,
) -> tuple[ServiceContext, bool]:
    """:func:`load_service_context`, from this process's memory when read before;
    the flag says whether it came from memory.

    Only for a write that checks ``context.config_version`` in the same statement
    (``booking_insert_current``) and reads the context again when told it moved
    (:func:`forget_service_context`): a remembered context is never trusted on its own.
    Bounded: the least recently used of ``_CACHE_SIZE`` contexts is dropped.

    Callers that miss while the same context is being read wait for that read instead
    of each reading it (flag True: not read by this caller): the 500 clients of a race
    on a service just changed or not yet asked for read the same 20 staff's hours 500
    times. A waiter whose read failed or went away reads it itself.
    """
    key = (business_id, service_id, None if hours_for is None else tuple(hours_for))
    context = _contexts.get(key)
    if context is not None:
        _contexts.move_to_end(key)
        return context, True
    reading = _reading.get(key)
    if reading is not None:
        try:
            return await asyncio.shield(reading), True
        except (asyncio.CancelledError, Exception):
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            # that read failed or its request went away: this caller reads for itself
            return await load_service_context(
                conn, business_id, service_id, hours_for=hours_for
            ), False
    reading = asyncio.get_running_loop().create_future()
    _reading[key] = reading
    try:
        context = await load_service_context(conn, business_id, service_id, hours_for=hours_for)
    except BaseException as exc:
        if _reading.get(key) is reading:
            del _reading[key]
        if isinstance(exc, asyncio.CancelledError):
            reading.cancel()
        else:
            reading.set_exception(exc)
            reading.exception()  # retrieved: each waiter reads for itself instead
        raise
    if _reading.get(key) is reading:  # not forgotten meanwhile
        del _reading[key]
        _contexts[key] = context
        if len(_contexts) > _CACHE_SIZE:
            _contexts.popitem(last=False)
    reading.set_result(context)
    return context, False


def forget_service_context(business_id: UUID) -> None:
    """Drop every remembered context of a business (its rules changed)."""
    for key in [key for key in _contexts if key[0] == business_id]:
        del _contexts[key]
    for key in [key for key in _reading if key[0] == business_id]:
        del _reading[key]  # a read in flight may be older than the change
