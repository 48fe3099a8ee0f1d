"""The sequence search's assignment of people to segments: no valid start is lost to
the order in which free slots happen to come back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from booking.availability.slots import FreeSlot
from booking.sequences.availability import _fit

ORIGIN = datetime(2026, 12, 8, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
# cut 0-30 (buffer after 10), 5 min gap, colour 35-95 (buffers 10/10)
SHAPE = [
    (ORIGIN, ORIGIN + 30 * MIN, ORIGIN, ORIGIN + 40 * MIN),
    (ORIGIN + 35 * MIN, ORIGIN + 95 * MIN, ORIGIN + 25 * MIN, ORIGIN + 105 * MIN),
]


def test_a_dead_end_on_the_first_person_tries_the_next() -> None:
    anna, bruno = uuid4(), uuid4()
    start = ORIGIN + 120 * MIN
    second = start + 35 * MIN
    # Anna comes back first for the cut, but only she is free for the colour.
    by_start = [
        {start: [FreeSlot(start, start + 30 * MIN, anna), FreeSlot(start, start, bruno)]},
        {second: [FreeSlot(second, second + 60 * MIN, anna)]},
    ]
    chosen = _fit(start, SHAPE, ORIGIN, by_start)
    assert chosen is not None
    assert [c["staff_id"] for c in chosen] == [bruno, anna]
    assert [c["starts_at"] for c in chosen] == [start, second]


def test_no_assignment_means_no_start() -> None:
    anna = uuid4()
    start = ORIGIN
    by_start = [
        {start: [FreeSlot(start, start + 30 * MIN, anna)]},
        {start + 35 * MIN: [FreeSlot(start + 35 * MIN, start + 95 * MIN, anna)]},
    ]
    assert _fit(start, SHAPE, ORIGIN, by_start) is None  # her blocked ranges overlap


def test_the_same_person_does_both_when_the_ranges_do_not_overlap() -> None:
    anna = uuid4()
    shape = [
        (ORIGIN, ORIGIN + 30 * MIN, ORIGIN, ORIGIN + 30 * MIN),
        (ORIGIN + 30 * MIN, ORIGIN + 60 * MIN, ORIGIN + 30 * MIN, ORIGIN + 60 * MIN),
    ]
    by_start = [
        {ORIGIN: [FreeSlot(ORIGIN, ORIGIN + 30 * MIN, anna)]},
        {ORIGIN + 30 * MIN: [FreeSlot(ORIGIN + 30 * MIN, ORIGIN + 60 * MIN, anna)]},
    ]
    chosen = _fit(ORIGIN, shape, ORIGIN, by_start)
    assert chosen is not None
    assert [c["staff_id"] for c in chosen] == [anna, anna]
