"""RRULE and date-list expansion for series (pure)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from booking.errors import InvalidInput
from booking.series.rules import MAX_OCCURRENCES, expand_dates, expand_rule

ROME = ZoneInfo("Europe/Rome")
FIRST = datetime(2026, 10, 6, 10, 0, tzinfo=ROME)  # a Tuesday, before the October change


def test_weekly_count_stays_on_the_wall_clock_across_dst() -> None:
    times = expand_rule("FREQ=WEEKLY;COUNT=10", FIRST, ROME)
    assert len(times) == 10
    assert all(t.tzinfo is UTC for t in times)
    assert {t.astimezone(ROME).hour for t in times} == {10}
    assert times[0].hour == 8  # CEST
    assert times[-1].hour == 9  # CET after 25 October
    assert [t.astimezone(ROME).weekday() for t in times] == [1] * 10


def test_interval_and_prefix() -> None:
    times = expand_rule("RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=3", FIRST, ROME)
    assert [t.astimezone(ROME).date().isoformat() for t in times] == [
        "2026-10-06",
        "2026-10-20",
        "2026-11-03",
    ]


def test_until_is_inclusive() -> None:
    times = expand_rule("FREQ=DAILY;UNTIL=20261008T100000", FIRST, ROME)
    assert len(times) == 3


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=WEEKLY",  # never ends
        "FREQ=WEEKLY;COUNT=53",  # too many
        "FREQ=DAILY;UNTIL=20301231T000000",  # too many through UNTIL
        "FREQ=HOURLY;COUNT=3",  # finer than daily
        "FREQ=FORTNIGHTLY;COUNT=3",  # not a frequency
        "COUNT=3",  # no FREQ
        "FREQ=WEEKLY;COUNT=3\nDTSTART:20260101T000000",  # a second line
        "FREQ=WEEKLY;UNTIL=20200101T000000",  # ends before it starts: no occurrence
        "",
    ],
)
def test_bad_rules_are_refused(rule: str) -> None:
    with pytest.raises(InvalidInput):
        expand_rule(rule, FIRST, ROME)


def test_dates_sorted_and_checked() -> None:
    a = datetime(2026, 12, 1, 10, tzinfo=ROME)
    b = datetime(2026, 11, 1, 10, tzinfo=ROME)
    assert expand_dates([a, b]) == [b.astimezone(UTC), a.astimezone(UTC)]
    with pytest.raises(InvalidInput):
        expand_dates([a, a])
    with pytest.raises(InvalidInput):
        expand_dates([datetime(2026, 12, 1, 10)])
    with pytest.raises(InvalidInput):
        expand_dates([])
    with pytest.raises(InvalidInput):
        expand_dates([a + timedelta(days=i) for i in range(MAX_OCCURRENCES + 1)])


@given(count=st.integers(min_value=1, max_value=MAX_OCCURRENCES), interval=st.integers(1, 4))
def test_weekly_rules_give_count_occurrences_a_whole_number_of_weeks_apart(
    count: int, interval: int
) -> None:
    times = expand_rule(f"FREQ=WEEKLY;INTERVAL={interval};COUNT={count}", FIRST, ROME)
    assert len(times) == count
    for earlier, later in itertools.pairwise(times):
        gap = later.astimezone(ROME).date() - earlier.astimezone(ROME).date()
        assert gap == timedelta(weeks=interval)
