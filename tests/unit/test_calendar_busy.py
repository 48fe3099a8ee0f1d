"""What counts as busy in an imported calendar (pure rules, no server)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest

from booking.calendars.busy import CalendarUnreadable, busy_intervals, parse_calendars

ROME = ZoneInfo("Europe/Rome")
START = datetime(2027, 3, 1, tzinfo=UTC)
END = START + timedelta(days=60)


def _cal(*events: dict[str, Any]) -> list[icalendar.Calendar]:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//t//EN")
    cal.add("version", "2.0")
    for index, props in enumerate(events):
        item = icalendar.Event()
        item.add("uid", props.pop("uid", f"e{index}"))
        item.add("dtstamp", START)
        for name, value in props.items():
            if name == "attendee":
                address, partstat = value
                item.add("attendee", address, parameters={"PARTSTAT": partstat})
            else:
                item.add(name, value)
        cal.add_component(item)
    return parse_calendars([cal.to_ical()])


def _spans(
    cals: list[icalendar.Calendar], email: str | None = None
) -> list[tuple[datetime, datetime]]:
    return [(i.starts_at, i.ends_at) for i in busy_intervals(cals, ROME, START, END, email=email)]


def _rome(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2027, month, day, hour, tzinfo=ROME)


def test_a_timed_event_is_busy_and_transparent_or_cancelled_ones_are_not() -> None:
    busy = {"dtstart": _rome(2, 10), "dtend": _rome(2, 11)}
    free = {"dtstart": _rome(3, 10), "dtend": _rome(3, 11), "transp": "TRANSPARENT"}
    gone = {"dtstart": _rome(4, 10), "dtend": _rome(4, 11), "status": "CANCELLED"}
    outlook_free = {
        "dtstart": _rome(5, 10),
        "dtend": _rome(5, 11),
        "x-microsoft-cdo-busystatus": "FREE",
    }
    assert _spans(_cal(busy, free, gone, outlook_free)) == [(_rome(2, 10), _rome(2, 11))]


def test_declined_by_the_staff_member_is_free_accepted_is_busy() -> None:
    declined = {
        "dtstart": _rome(2, 10),
        "dtend": _rome(2, 11),
        "attendee": ("mailto:Giulia@Example.org", "DECLINED"),
    }
    accepted = {
        "dtstart": _rome(3, 10),
        "dtend": _rome(3, 11),
        "attendee": ("mailto:giulia@example.org", "ACCEPTED"),
    }
    cals = _cal(declined, accepted)
    assert _spans(cals, "giulia@example.org") == [(_rome(3, 10), _rome(3, 11))]
    assert len(_spans(cals)) == 2  # without the address nothing can be called declined


def test_all_day_events_are_free_unless_marked_busy_then_midnight_to_midnight_locally() -> None:
    birthday = {"dtstart": date(2027, 3, 2), "dtend": date(2027, 3, 3)}
    away = {"dtstart": date(2027, 3, 4), "dtend": date(2027, 3, 6), "transp": "OPAQUE"}
    assert _spans(_cal(birthday, away)) == [(_rome(4, 0), _rome(6, 0))]


def test_weekly_series_with_exdate_and_a_moved_occurrence_across_the_dst_change() -> None:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//t//EN")
    cal.add("version", "2.0")
    series = icalendar.Event()
    series.add("uid", "gym")
    series.add("dtstamp", START)
    series.add("dtstart", _rome(15, 18))
    series.add("dtend", _rome(15, 19))
    series.add("rrule", {"freq": "weekly", "count": 4})
    series.add("exdate", _rome(22, 18))
    cal.add_component(series)
    moved = icalendar.Event()
    moved.add("uid", "gym")
    moved.add("dtstamp", START)
    moved.add("recurrence-id", _rome(29, 18))
    moved.add("dtstart", _rome(29, 20))
    moved.add("dtend", _rome(29, 21))
    cal.add_component(moved)
    spans = _spans(parse_calendars([cal.to_ical()]))
    # 29 March 2027 is after the spring change: still 18:00 local, 16:00 UTC.
    assert spans == [
        (_rome(15, 18), _rome(15, 19)),
        (_rome(29, 20), _rome(29, 21)),
        (_rome(5, 18, 4), _rome(5, 19, 4)),
    ]
    assert spans[2][0].astimezone(UTC).hour == 16


def test_our_own_written_back_bookings_are_not_busy_and_keys_are_stable() -> None:
    own = {"uid": "0b7e@booking", "dtstart": _rome(2, 10), "dtend": _rome(2, 11)}
    other = {"uid": "x", "dtstart": _rome(3, 10), "dtend": _rome(3, 11)}
    first = busy_intervals(_cal(dict(own), dict(other)), ROME, START, END)
    second = busy_intervals(_cal(dict(own), dict(other)), ROME, START, END)
    assert [i.key for i in first] == [i.key for i in second]
    assert len(first) == 1


@pytest.mark.parametrize("body", [b"<html></html>", b"", b"BEGIN:VCARD\r\nEND:VCARD\r\n"])
def test_a_body_that_is_no_calendar_is_refused(body: bytes) -> None:
    with pytest.raises(CalendarUnreadable):
        parse_calendars([body])
