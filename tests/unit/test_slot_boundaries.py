"""The slot search at its edges: range ends, second-precision busy time, bad input,
and the epoch-seconds busy form. Pure, no server."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from booking.availability.slots import (
    FreeSlot,
    ServiceShape,
    StaffCalendar,
    WeeklyWindow,
    fits_working_hours,
    free_starts_for_staff,
)

ROME = ZoneInfo("Europe/Rome")
STAFF = UUID("00000000-0000-0000-0000-000000000001")
DAY = date(2026, 12, 1)  # a Tuesday, Rome on +01:00
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=30)
HALF_HOUR = ServiceShape(duration=timedelta(minutes=30))
NINE_TO_FIVE = tuple(WeeklyWindow(day, time(9), time(17)) for day in range(7))


def rome(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(DAY, time(hour, minute, second), tzinfo=ROME)


def starts(
    start: datetime,
    end: datetime,
    *,
    busy: tuple[tuple[datetime, datetime], ...] = (),
    busy_seconds: tuple[tuple[int, int], ...] | None = None,
    shape: ServiceShape = HALF_HOUR,
    step: timedelta = STEP,
) -> list[str]:
    calendar = StaffCalendar(STAFF, NINE_TO_FIVE, busy, busy_seconds)
    found = free_starts_for_staff(calendar, shape, ROME, start, end, LONG_AGO, step)
    return [datetime.fromtimestamp(s, ROME).strftime("%H:%M:%S") for s in found]


def test_a_range_inside_one_day_finds_that_days_slots() -> None:
    assert starts(rome(8), rome(10)) == ["09:00:00", "09:30:00"]


def test_a_start_exactly_at_the_range_end_is_outside() -> None:
    assert starts(rome(9), rome(10)) == ["09:00:00", "09:30:00"]


def test_a_start_one_second_before_the_range_end_is_inside() -> None:
    assert starts(rome(9), rome(9, 30, 1)) == ["09:00:00", "09:30:00"]


def test_busy_time_starting_one_second_before_the_slot_ends_blocks_it() -> None:
    busy = ((rome(9, 29, 59), rome(9, 45)),)
    assert starts(rome(9), rome(11), busy=busy) == ["10:00:00", "10:30:00"]


def test_busy_time_ending_at_the_slot_start_does_not_block_it() -> None:
    busy = ((rome(8), rome(9)),)
    assert starts(rome(9), rome(10), busy=busy) == ["09:00:00", "09:30:00"]


def test_an_empty_busy_range_blocks_nothing() -> None:
    busy = ((rome(9, 15), rome(9, 15)), (rome(9, 40), rome(9, 20)))
    assert starts(rome(9), rome(10), busy=busy) == ["09:00:00", "09:30:00"]


def test_busy_seconds_are_used_instead_of_busy() -> None:
    as_seconds = ((int(rome(9).timestamp()), int(rome(9, 30).timestamp())),)
    ignored = ((rome(9, 30), rome(10)),)
    assert starts(rome(9), rome(10), busy=ignored, busy_seconds=as_seconds) == ["09:30:00"]


def test_empty_busy_seconds_mean_free() -> None:
    blocked = ((rome(9), rome(10)),)
    assert starts(rome(9), rome(10), busy=blocked, busy_seconds=()) == ["09:00:00", "09:30:00"]


def test_one_second_duration_and_step_are_valid() -> None:
    second = timedelta(seconds=1)
    found = starts(rome(9), rome(9, 0, 3), shape=ServiceShape(duration=second), step=second)
    assert found == ["09:00:00", "09:00:01", "09:00:02"]


@pytest.mark.parametrize(
    ("duration", "step"),
    [
        (timedelta(0), STEP),
        (-timedelta(minutes=5), STEP),
        (timedelta(minutes=30), timedelta(0)),
        (timedelta(minutes=30), -STEP),
        (timedelta(0), timedelta(0)),
    ],
)
def test_duration_and_step_must_be_positive(duration: timedelta, step: timedelta) -> None:
    # the range starts after opening, so a zero step would first divide by it
    with pytest.raises(ValueError, match=r"^duration and step must be positive$"):
        starts(rome(9, 10), rome(11), shape=ServiceShape(duration=duration), step=step)


def test_naive_times_are_refused() -> None:
    naive = datetime(2026, 12, 1, 9)  # naive on purpose
    with pytest.raises(ValueError, match=r"^naive datetime: times must carry an offset$"):
        fits_working_hours(NINE_TO_FIVE, ROME, naive, rome(10))
    with pytest.raises(ValueError, match=r"^naive datetime: times must carry an offset$"):
        starts(naive, rome(10))


def test_free_slot_local_times() -> None:
    slot = FreeSlot(rome(9).astimezone(UTC), rome(9, 30).astimezone(UTC), STAFF)
    local_start, local_end = slot.local(ROME)
    assert (local_start.isoformat(), local_end.isoformat()) == (
        "2026-12-01T09:00:00+01:00",
        "2026-12-01T09:30:00+01:00",
    )
    assert local_start.tzinfo is ROME
    assert local_end.tzinfo is ROME


def test_the_buffer_before_a_slot_must_be_free() -> None:
    before = ServiceShape(duration=timedelta(minutes=30), buffer_before=timedelta(minutes=15))
    busy = ((rome(9), rome(9, 20)),)  # 09:30's buffer (09:15-09:30) overlaps it
    assert starts(rome(9, 30), rome(11), busy=busy, shape=before) == ["10:00:00", "10:30:00"]
