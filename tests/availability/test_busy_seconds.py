"""Busy time handed over as merged epoch seconds (what load_calendars reads from
PostgreSQL: range_agg merges exact ranges, then floor to seconds) finds exactly the
slots that the datetime ranges do (truncated to seconds, then merged in Python)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from booking.availability.slots import (
    ServiceShape,
    StaffCalendar,
    WeeklyWindow,
    find_free_slots,
)

ROME = ZoneInfo("Europe/Rome")
STAFF = UUID("00000000-0000-0000-0000-000000000002")
DAY = datetime(2026, 3, 28, tzinfo=UTC)  # the weekend Rome springs forward
WEEK = tuple(WeeklyWindow(weekday, time(8), time(19)) for weekday in range(7))


def _like_postgres(busy: list[tuple[datetime, datetime]]) -> tuple[tuple[int, int], ...]:
    """range_agg (merge overlapping and touching exact ranges), then floor to seconds."""
    merged: list[list[datetime]] = []
    for start, end in sorted(busy):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((int(start.timestamp()), int(end.timestamp())) for start, end in merged)


ranges = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3 * 24 * 3600 * 1000),  # start, ms into the range
        st.integers(min_value=1, max_value=3 * 3600 * 1000),  # length, ms
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(ranges, st.sampled_from([5, 15, 30]), st.sampled_from([0, 10]))
def test_merged_seconds_find_the_same_slots_as_datetimes(
    spans: list[tuple[int, int]], step: int, buffer: int
) -> None:
    busy = [
        (DAY + timedelta(milliseconds=start), DAY + timedelta(milliseconds=start + length))
        for start, length in spans
    ]
    shape = ServiceShape(timedelta(minutes=30), timedelta(minutes=buffer), timedelta(0))
    args = (shape, ROME, DAY, DAY + timedelta(days=3), DAY, timedelta(minutes=step))
    from_datetimes = find_free_slots([StaffCalendar(STAFF, WEEK, tuple(busy))], *args)
    from_seconds = find_free_slots(
        [StaffCalendar(STAFF, WEEK, busy_seconds=_like_postgres(busy))], *args
    )
    assert from_seconds == from_datetimes
