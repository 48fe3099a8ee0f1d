"""Dated exceptions in the pure slot functions: a closed day, a special opening."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from booking.availability.slots import (
    DatedWindow,
    WeeklyWindow,
    fits_working_hours,
    working_windows,
)

NY = ZoneInfo("America/New_York")
MONDAY = date(2030, 1, 7)
WEEK = tuple(WeeklyWindow(d, time(9), time(17)) for d in range(7))


def ny(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=NY)


def test_a_closed_day_has_no_windows_and_the_next_day_keeps_its_own() -> None:
    hours = (*WEEK, DatedWindow(MONDAY, None, None))
    windows = working_windows(hours, NY, MONDAY, date(2030, 1, 8))
    assert windows == [(int(ny(date(2030, 1, 8), 9).timestamp()),
                        int(ny(date(2030, 1, 8), 17).timestamp()))]  # fmt: skip
    assert not fits_working_hours(hours, NY, ny(MONDAY, 10), ny(MONDAY, 11))


def test_a_special_opening_replaces_the_weekday_hours_that_day_only() -> None:
    hours = (
        *WEEK,
        DatedWindow(MONDAY, time(18), time(20)),
        DatedWindow(MONDAY, time(7), time(8)),
    )
    assert fits_working_hours(hours, NY, ny(MONDAY, 18), ny(MONDAY, 19))
    assert fits_working_hours(hours, NY, ny(MONDAY, 7), ny(MONDAY, 8))
    assert not fits_working_hours(hours, NY, ny(MONDAY, 10), ny(MONDAY, 11))
    next_monday = date(2030, 1, 14)
    assert fits_working_hours(hours, NY, ny(next_monday, 10), ny(next_monday, 11))
    assert not fits_working_hours(hours, NY, ny(next_monday, 18), ny(next_monday, 19))
