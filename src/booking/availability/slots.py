"""Free-slot computation: pure functions over schedules and busy times.

Working hours are wall-clock times in the business's IANA zone; everything else
is absolute time. Slots are generated on the local wall clock from each day's
opening time, stepping in absolute time, so a day that loses or gains an hour
(DST) simply has fewer or more hours of slots and no slot starts at a
wall-clock time that does not exist.

Rules chosen here (see docs/decisions.md):
* the appointment itself must lie inside one working window;
* buffers may extend past opening hours but never over another booking,
  a hold or time off (those ranges are already buffer-inclusive);
* a slot starts inside the asked range and not before ``not_before``
  (now + minimum notice).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import NamedTuple
from uuid import UUID
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class WeeklyWindow:
    weekday: int  # Monday = 0
    opens_at: time
    closes_at: time


@dataclass(frozen=True, slots=True)
class DatedWindow:
    """An exception for one local date: on ``day`` the member of staff works the dated
    windows given for it instead of their weekly ones; a window without times
    (``opens_at is None``) closes the day."""

    day: date
    opens_at: time | None
    closes_at: time | None


# A member of staff's hours: weekly windows, and dated windows that replace a day's.
HoursRule = WeeklyWindow | DatedWindow


@dataclass(frozen=True, slots=True)
class StaffCalendar:
    staff_id: UUID
    weekly: tuple[HoursRule, ...]
    # Busy ranges, half-open [start, end): time off and the buffer-inclusive
    # blocked ranges of active bookings and live holds.
    busy: tuple[tuple[datetime, datetime], ...] = ()
    # The same busy time as whole epoch seconds (start, end), non-overlapping and
    # sorted: what load_calendars hands over (PostgreSQL merges and converts), so a
    # search builds no datetime per range. When set it is used instead of ``busy``.
    busy_seconds: tuple[tuple[int, int], ...] | None = None


@dataclass(frozen=True, slots=True)
class ServiceShape:
    duration: timedelta
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)


class FreeSlot(NamedTuple):
    """A free start for one member of staff, in UTC.

    Kept in UTC on purpose: Python compares and subtracts datetimes that share
    a tzinfo by wall clock, which misorders the repeated hour of a DST
    fall-back. Convert with :meth:`local` only for display.

    A named tuple (immutable, ordered by start, end, staff): a sparse month has
    some 20,000 of them, and a frozen dataclass cost 4x as much to build.
    """

    starts_at: datetime
    ends_at: datetime
    staff_id: UUID
    resource_id: UUID | None = None  # the room/chair/device, when the service needs one

    def local(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        return self.starts_at.astimezone(tz), self.ends_at.astimezone(tz)


def _ts(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: times must carry an offset")
    return int(moment.timestamp())


def local_instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The real instant of a wall-clock time on a day.

    A wall-clock time inside a spring-forward gap does not exist; it is moved
    forward by the gap (02:30 on the day Rome jumps from 02:00 to 03:00 becomes
    03:30), as a person reading the clock would.
    """
    naive = datetime.combine(day, wall)
    aware = naive.replace(tzinfo=tz)
    round_trip = aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if round_trip != naive:  # inside a gap
        return aware.astimezone(UTC).astimezone(tz)
    return aware


def working_windows(
    weekly: Iterable[HoursRule], tz: ZoneInfo, first_day: date, last_day: date
) -> list[tuple[int, int]]:
    """Absolute [open, close) windows (epoch seconds) for each local day, in order.

    A day with dated windows (:class:`DatedWindow`) uses those instead of its weekday's."""
    return list(_working_windows(tuple(weekly), tz, first_day, last_day))


@lru_cache(maxsize=4096)
def _working_windows(
    weekly: tuple[HoursRule, ...], tz: ZoneInfo, first_day: date, last_day: date
) -> tuple[tuple[int, int], ...]:
    # Cached: staff of a business mostly share their hours, and a search asks
    # the same days for each of them (a pure function of its arguments).
    by_weekday: dict[int, list[tuple[time, time]]] = {}
    by_date: dict[date, list[tuple[time, time]]] = {}
    for window in weekly:
        if isinstance(window, DatedWindow):
            ranges = by_date.setdefault(window.day, [])
            if window.opens_at is not None and window.closes_at is not None:
                ranges.append((window.opens_at, window.closes_at))
        else:
            by_weekday.setdefault(window.weekday, []).append((window.opens_at, window.closes_at))
    windows: list[tuple[int, int]] = []
    day = first_day
    while day <= last_day:
        day_ranges = by_date.get(day)
        for opens_at, closes_at in (
            by_weekday.get(day.weekday(), ()) if day_ranges is None else day_ranges
        ):
            opens = _ts(local_instant(day, opens_at, tz))
            closes = _ts(local_instant(day, closes_at, tz))
            if closes > opens:
                windows.append((opens, closes))
        day += timedelta(days=1)
    windows.sort()
    return tuple(windows)


def _merge(busy: Iterable[tuple[datetime, datetime]]) -> tuple[list[int], list[int]]:
    return _merge_seconds((_ts(start), _ts(end)) for start, end in busy if end > start)


def _merge_seconds(busy: Iterable[tuple[int, int]]) -> tuple[list[int], list[int]]:
    intervals = sorted(busy)
    starts: list[int] = []
    ends: list[int] = []
    for start, end in intervals:
        if ends and start <= ends[-1]:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends


def free_starts_for_staff(
    calendar: StaffCalendar,
    service: ServiceShape,
    tz: ZoneInfo,
    range_start: datetime,
    range_end: datetime,
    not_before: datetime,
    step: timedelta,
) -> list[int]:
    """Epoch-second start times at which ``service`` fits for one member of staff."""
    duration = int(service.duration.total_seconds())
    before = int(service.buffer_before.total_seconds())
    after = int(service.buffer_after.total_seconds())
    step_s = int(step.total_seconds())
    if duration <= 0 or step_s <= 0:
        raise ValueError("duration and step must be positive")
    lo = max(_ts(range_start), _ts(not_before))
    hi = _ts(range_end)
    if hi <= lo:
        return []
    # One local day of margin on each side catches windows that cross midnight
    # in UTC terms.
    first_day = range_start.astimezone(tz).date() - timedelta(days=1)
    last_day = range_end.astimezone(tz).date() + timedelta(days=1)
    if calendar.busy_seconds is not None:
        busy_starts, busy_ends = _merge_seconds(calendar.busy_seconds)
    else:
        busy_starts, busy_ends = _merge(calendar.busy)
    starts: list[int] = []
    for opens, closes in _working_windows(tuple(calendar.weekly), tz, first_day, last_day):
        if closes <= lo or opens >= hi:
            continue
        candidate = opens
        if candidate < lo:  # jump to the first aligned step not before lo
            candidate += -(-(lo - candidate) // step_s) * step_s
        last_start = min(closes - duration, hi - 1)
        while candidate <= last_start:
            block_from = candidate - before
            block_until = candidate + duration + after
            # The busy interval starting last at or before block_until - 1 is
            # the only one that can overlap, since intervals are merged.
            index = bisect_right(busy_starts, block_until - 1) - 1
            if index >= 0 and busy_ends[index] > block_from:
                # Skip straight past the conflict, staying on the step grid.
                free_from = busy_ends[index] + before
                candidate += max(1, -(-(free_from - candidate) // step_s)) * step_s
                continue
            starts.append(candidate)
            candidate += step_s
    return starts


FreeTime = tuple[datetime, datetime, list[UUID]]  # start, end (UTC), staff free for it


def find_free_times(
    calendars: Sequence[StaffCalendar],
    service: ServiceShape,
    tz: ZoneInfo,
    range_start: datetime,
    range_end: datetime,
    not_before: datetime,
    step: timedelta,
) -> list[FreeTime]:
    """Each free start (UTC) with the staff free for it, in id-text order; by start.

    Grouped as the availability answer shows them: a sparse month has a thousand
    starts shared by twenty staff, and building the pairs only to group them
    again cost more than finding them.
    """
    duration = service.duration
    by_start: dict[int, list[UUID]] = {}
    for calendar in sorted(calendars, key=lambda calendar: str(calendar.staff_id)):
        staff_id = calendar.staff_id
        for start in free_starts_for_staff(
            calendar, service, tz, range_start, range_end, not_before, step
        ):
            sharing = by_start.get(start)
            if sharing is None:
                by_start[start] = [staff_id]
            else:
                sharing.append(staff_id)
    found: list[FreeTime] = []
    for start in sorted(by_start):
        starts_at = datetime.fromtimestamp(start, UTC)
        found.append((starts_at, starts_at + duration, by_start[start]))
    return found


def find_free_slots(
    calendars: Sequence[StaffCalendar],
    service: ServiceShape,
    tz: ZoneInfo,
    range_start: datetime,
    range_end: datetime,
    not_before: datetime,
    step: timedelta,
) -> list[FreeSlot]:
    """All free (start, staff) pairs, ordered by start time then staff id."""
    return [
        FreeSlot(starts_at, ends_at, staff_id)
        for starts_at, ends_at, staff_ids in find_free_times(
            calendars, service, tz, range_start, range_end, not_before, step
        )
        for staff_id in staff_ids
    ]


def nearest_slots(slots: Iterable[FreeSlot], target: datetime, limit: int) -> list[FreeSlot]:
    """The ``limit`` slots closest in time to ``target`` (ties: earlier first)."""
    target_utc = target.astimezone(UTC)
    ranked = sorted(
        slots,
        key=lambda slot: (abs((slot.starts_at - target_utc).total_seconds()), slot.starts_at),
    )
    return ranked[:limit]


def fits_working_hours(
    weekly: Iterable[HoursRule], tz: ZoneInfo, starts_at: datetime, ends_at: datetime
) -> bool:
    """Whether [starts_at, ends_at) lies inside one working window."""
    start, end = _ts(starts_at), _ts(ends_at)
    day = starts_at.astimezone(tz).date()
    windows = working_windows(weekly, tz, day - timedelta(days=1), day + timedelta(days=1))
    return any(opens <= start and end <= closes for opens, closes in windows)
