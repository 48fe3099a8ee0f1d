"""Slot generation as pure functions: hours, buffers, busy time, notice, DST."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from booking.availability.slots import (
    FreeSlot,
    ServiceShape,
    StaffCalendar,
    WeeklyWindow,
    find_free_slots,
    find_free_times,
    fits_working_hours,
    local_instant,
    nearest_slots,
)

ROME = ZoneInfo("Europe/Rome")
STAFF = UUID("00000000-0000-0000-0000-000000000001")
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=30)
DST_DAYS = [
    date(2026, 3, 29),
    date(2026, 10, 25),
    date(2027, 3, 28),
    date(2027, 10, 31),
    date(2028, 3, 26),
    date(2028, 10, 29),
]
HALF_HOUR = ServiceShape(duration=timedelta(minutes=30))


def every_day(opens: time, closes: time) -> tuple[WeeklyWindow, ...]:
    return tuple(WeeklyWindow(day, opens, closes) for day in range(7))


def day_range(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=ROME)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=ROME)


def slots_on(day: date, calendar: StaffCalendar, shape: ServiceShape = HALF_HOUR) -> list[FreeSlot]:
    start, end = day_range(day)
    return find_free_slots([calendar], shape, ROME, start, end, LONG_AGO, STEP)


def test_working_day_slots_fill_the_hours() -> None:
    calendar = StaffCalendar(STAFF, every_day(time(9), time(12)))
    slots = slots_on(date(2026, 12, 1), calendar)
    assert [s.starts_at.astimezone(ROME).strftime("%H:%M") for s in slots] == [
        "09:00",
        "09:30",
        "10:00",
        "10:30",
        "11:00",
        "11:30",
    ]
    assert all(s.starts_at.astimezone(ROME).utcoffset() == timedelta(hours=1) for s in slots)


def test_busy_time_and_buffers_are_respected() -> None:
    day = date(2026, 12, 1)
    busy = (
        datetime.combine(day, time(10), tzinfo=ROME),
        datetime.combine(day, time(10, 30), tzinfo=ROME),
    )
    calendar = StaffCalendar(STAFF, every_day(time(9), time(12)), (busy,))
    shape = ServiceShape(
        duration=timedelta(minutes=30),
        buffer_before=timedelta(minutes=15),
        buffer_after=timedelta(minutes=15),
    )
    starts = [
        s.starts_at.astimezone(ROME).strftime("%H:%M") for s in slots_on(day, calendar, shape)
    ]
    # 09:30 would need cleanup until 10:15; 10:30 would need preparation from 10:15.
    assert starts == ["09:00", "11:00", "11:30"]


def test_minimum_notice_hides_earlier_slots() -> None:
    day = date(2026, 12, 1)
    calendar = StaffCalendar(STAFF, every_day(time(9), time(12)))
    start, end = day_range(day)
    not_before = datetime.combine(day, time(10, 10), tzinfo=ROME)
    slots = find_free_slots([calendar], HALF_HOUR, ROME, start, end, not_before, STEP)
    assert slots[0].starts_at.astimezone(ROME).strftime("%H:%M") == "10:30"


def test_dst_spring_forward_rome_last_sunday_of_march() -> None:
    # 2026-03-29: at 02:00 CET clocks jump to 03:00 CEST.
    day = date(2026, 3, 29)
    night = StaffCalendar(STAFF, every_day(time(0), time(6)))
    slots = slots_on(day, night)
    labels = [s.starts_at.astimezone(ROME).strftime("%H:%M%z") for s in slots]
    assert "02:00+0100" not in labels
    assert "02:30+0100" not in labels
    assert labels[:5] == ["00:00+0100", "00:30+0100", "01:00+0100", "01:30+0100", "03:00+0200"]
    assert len(slots) == 10  # a six-hour wall-clock window that lasts five hours
    gaps = {b.starts_at - a.starts_at for a, b in itertools.pairwise(slots)}
    assert gaps == {STEP}  # absolute time keeps stepping evenly across the jump
    day_shift = StaffCalendar(STAFF, every_day(time(9), time(18)))
    daytime = slots_on(day, day_shift)
    assert len(daytime) == 18
    assert daytime[0].starts_at.astimezone(ROME).isoformat() == "2026-03-29T09:00:00+02:00"


def test_dst_fall_back_rome_last_sunday_of_october() -> None:
    # 2026-10-25: at 03:00 CEST clocks go back to 02:00 CET; 02:00-03:00 happens twice.
    day = date(2026, 10, 25)
    night = StaffCalendar(STAFF, every_day(time(0), time(6)))
    slots = slots_on(day, night)
    labels = [s.starts_at.astimezone(ROME).strftime("%H:%M%z") for s in slots]
    assert len(slots) == 14  # a six-hour wall-clock window that lasts seven hours
    assert labels[4:8] == ["02:00+0200", "02:30+0200", "02:00+0100", "02:30+0100"]
    daytime = slots_on(day, StaffCalendar(STAFF, every_day(time(9), time(18))))
    assert len(daytime) == 18
    assert daytime[0].starts_at.astimezone(ROME).isoformat() == "2026-10-25T09:00:00+01:00"


def test_wall_clock_time_in_the_spring_gap_moves_forward() -> None:
    assert local_instant(date(2026, 3, 29), time(2, 30), ROME).isoformat() == (
        "2026-03-29T03:30:00+02:00"
    )


def test_fits_working_hours() -> None:
    weekly = every_day(time(9), time(18))
    inside = datetime(2026, 12, 1, 17, 30, tzinfo=ROME)
    assert fits_working_hours(weekly, ROME, inside, inside + timedelta(minutes=30))
    assert not fits_working_hours(weekly, ROME, inside, inside + timedelta(minutes=31))
    early = datetime(2026, 12, 1, 8, 59, tzinfo=ROME)
    assert not fits_working_hours(weekly, ROME, early, early + timedelta(minutes=30))


def test_nearest_slots_orders_by_distance() -> None:
    base = datetime(2026, 12, 1, 12, tzinfo=ROME)
    slots = [
        FreeSlot(base + timedelta(minutes=m), base + timedelta(minutes=m + 30), STAFF)
        for m in (-120, -30, 30, 60, 240)
    ]
    nearest = nearest_slots(slots, base, 3)
    assert [int((s.starts_at - base).total_seconds() // 60) for s in nearest] == [-30, 30, 60]


@st.composite
def calendars(draw: st.DrawFn) -> tuple[StaffCalendar, date]:
    day = draw(
        st.one_of(
            st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31)),
            st.sampled_from(DST_DAYS),  # make the hard days common, not lucky
        )
    )
    opens = draw(st.integers(min_value=0, max_value=20))
    closes = draw(st.integers(min_value=opens + 1, max_value=23))
    # UTC arithmetic: adding minutes to a Rome-aware datetime is wall-clock
    # arithmetic in Python and lands in the DST gap.
    base = datetime.combine(day, time(0), tzinfo=ROME).astimezone(UTC)
    busy = []
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        start = base + timedelta(minutes=draw(st.integers(min_value=0, max_value=24 * 60)))
        busy.append((start, start + timedelta(minutes=draw(st.integers(1, 240)))))
    weekly = every_day(time(opens), time(closes))
    return StaffCalendar(uuid4(), weekly, tuple(busy)), day


@settings(max_examples=200, deadline=None)
@given(
    calendars(),
    st.integers(min_value=5, max_value=180),
    st.integers(min_value=0, max_value=30),
    st.integers(min_value=0, max_value=30),
)
def test_free_slots_never_overlap_busy_time_and_stay_in_hours(
    calendar_and_day: tuple[StaffCalendar, date], minutes: int, before: int, after: int
) -> None:
    calendar, day = calendar_and_day
    shape = ServiceShape(
        timedelta(minutes=minutes), timedelta(minutes=before), timedelta(minutes=after)
    )
    start, end = day_range(day)
    slots = find_free_slots([calendar], shape, ROME, start, end, LONG_AGO, timedelta(minutes=15))
    for slot in slots:
        assert start <= slot.starts_at < end
        assert fits_working_hours(calendar.weekly, ROME, slot.starts_at, slot.ends_at)
        blocked_from = slot.starts_at - shape.buffer_before
        blocked_until = slot.ends_at + shape.buffer_after
        for busy_start, busy_end in calendar.busy:
            assert blocked_until <= busy_start or busy_end <= blocked_from
    # And nothing free is missed: every grid start that is free is returned.
    returned = {slot.starts_at for slot in slots}
    opens = local_instant(day, calendar.weekly[0].opens_at, ROME).astimezone(UTC)
    closes = local_instant(day, calendar.weekly[0].closes_at, ROME).astimezone(UTC)
    candidate = opens
    while candidate + shape.duration <= closes:
        if start <= candidate < end:
            lo = candidate - shape.buffer_before
            hi = candidate + shape.duration + shape.buffer_after
            free = all(hi <= b_start or b_end <= lo for b_start, b_end in calendar.busy)
            assert (candidate in returned) == free, candidate
        candidate += timedelta(minutes=15)


def test_spring_gap_day_with_early_opening_returns_every_free_start() -> None:
    """Regression: the property above once built its expectations with wall-clock
    arithmetic on 2028-03-26 (Rome's spring change)."""
    day = date(2028, 3, 26)
    calendar = StaffCalendar(STAFF, every_day(time(1), time(5)))
    slots = slots_on(day, calendar)
    utc_starts = [s.starts_at for s in slots]
    assert utc_starts == sorted(set(utc_starts))
    labels = [s.starts_at.astimezone(ROME).strftime("%H:%M") for s in slots]
    assert labels == ["01:00", "01:30", "03:00", "03:30", "04:00", "04:30"]


@settings(max_examples=100, deadline=None)
@given(st.lists(calendars(), min_size=1, max_size=4))
def test_many_staff_are_grouped_by_start_and_ordered_by_staff_id(
    drawn: list[tuple[StaffCalendar, date]],
) -> None:
    """find_free_times groups per start what each calendar alone finds; find_free_slots
    lists the same pairs by start, then staff id text."""
    day = drawn[0][1]
    staff_calendars = [
        StaffCalendar(uuid4(), calendar.weekly, calendar.busy) for calendar, _ in drawn
    ]
    start, end = day_range(day)
    step = timedelta(minutes=15)
    alone = {
        calendar.staff_id: {
            slot.starts_at
            for slot in find_free_slots([calendar], HALF_HOUR, ROME, start, end, LONG_AGO, step)
        }
        for calendar in staff_calendars
    }
    expected_pairs = sorted(
        ((moment, str(staff_id)) for staff_id, moments in alone.items() for moment in moments)
    )
    slots = find_free_slots(staff_calendars, HALF_HOUR, ROME, start, end, LONG_AGO, step)
    assert [(slot.starts_at, str(slot.staff_id)) for slot in slots] == expected_pairs
    assert all(slot.ends_at - slot.starts_at == HALF_HOUR.duration for slot in slots)
    times = find_free_times(staff_calendars, HALF_HOUR, ROME, start, end, LONG_AGO, step)
    assert [moment for moment, _, _ in times] == sorted({moment for moment, _ in expected_pairs})
    for moment, _, staff_ids in times:
        assert staff_ids == sorted(
            (staff_id for staff_id, moments in alone.items() if moment in moments), key=str
        )
