"""Busy times from an iCalendar body: pure functions, no I/O.

Rules (docs/calendars.md says them to staff):

* Recurring events are expanded with ``recurring-ical-events`` (RRULE, RDATE, EXDATE,
  RECURRENCE-ID overrides, VTIMEZONE and IANA zones) inside a window
  (:data:`HORIZON` ahead); an event outside it, e.g. in the year 9999, blocks nothing.
* Free time is not busy: ``TRANSP:TRANSPARENT``, ``STATUS:CANCELLED``, an event the staff
  member declined (an ``ATTENDEE`` with their address and ``PARTSTAT=DECLINED``) and
  Outlook's ``X-MICROSOFT-CDO-BUSYSTATUS:FREE`` are ignored.
* All-day events (a ``DATE`` start) are free unless marked busy explicitly
  (``TRANSP:OPAQUE``): Google and Apple calendars mean birthdays, holidays and "working
  from home" by them. A busy all-day event blocks its days from midnight to midnight in
  the business's time zone. Floating times are read in the business's zone too.
* Our own bookings written back to the staff member's calendar (UID ``...@booking``)
  are not busy time: they are the bookings themselves.
* Each occurrence has a stable key (UID + the occurrence's original start), so a sync
  that sees the same calendar again changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

HORIZON = timedelta(days=180)
OWN_UID_SUFFIX = "@booking"
MAX_EVENTS = 50_000  # occurrences per calendar inside the window


class CalendarUnreadable(ValueError):
    """The body is not an iCalendar we can read; ``detail`` is for the connection status."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True, order=True)
class BusyInterval:
    starts_at: datetime
    ends_at: datetime
    key: str


def parse_calendars(bodies: Iterable[bytes | str]) -> list[icalendar.Calendar]:
    calendars = []
    for body in bodies:
        try:
            parsed = icalendar.Calendar.from_ical(body, multiple=True)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise CalendarUnreadable("The address does not answer with an iCalendar.") from exc
        found = [c for c in parsed if c.name == "VCALENDAR"]
        if not found:
            raise CalendarUnreadable("The address does not answer with an iCalendar.")
        calendars.extend(found)
    return calendars


def _moment(value: date | datetime, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)
    return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)


def _text(event: Any, name: str) -> str:
    return str(event.get(name, "")).strip().upper()


def _declined(event: Any, email: str | None) -> bool:
    if not email:
        return False
    attendees: Any = event.get("attendee", [])
    for attendee in attendees if isinstance(attendees, list) else [attendees]:
        address = str(attendee).lower().removeprefix("mailto:")
        if address == email.lower():
            return str(attendee.params.get("PARTSTAT", "")).upper() == "DECLINED"
    return False


def is_busy(event: Any, email: str | None = None) -> bool:
    """Whether this occurrence takes the staff member's time."""
    if str(event.get("uid", "")).endswith(OWN_UID_SUFFIX):
        return False
    if _text(event, "STATUS") == "CANCELLED" or _declined(event, email):
        return False
    if _text(event, "X-MICROSOFT-CDO-BUSYSTATUS") == "FREE":
        return False
    start = event.get("dtstart")
    all_day = start is not None and not isinstance(start.dt, datetime)
    transp = _text(event, "TRANSP")
    return transp == "OPAQUE" if all_day else transp != "TRANSPARENT"


def busy_intervals(
    calendars: Iterable[icalendar.Calendar],
    zone: ZoneInfo,
    window_start: datetime,
    window_end: datetime,
    *,
    email: str | None = None,
) -> list[BusyInterval]:
    """Every busy occurrence overlapping the window, sorted, one per key."""
    found: dict[str, BusyInterval] = {}
    for calendar in calendars:
        try:
            occurrences = recurring_ical_events.of(calendar, skip_bad_series=False).between(
                window_start, window_end
            )
            for event in occurrences:
                if event.name != "VEVENT" or not is_busy(event, email):
                    continue
                interval = _interval(event, zone)
                if interval is not None and interval.ends_at > window_start:
                    found.setdefault(interval.key, interval)
                if len(found) > MAX_EVENTS:
                    raise CalendarUnreadable(
                        f"The calendar has more than {MAX_EVENTS} events in the next "
                        f"{HORIZON.days} days."
                    )
        except CalendarUnreadable:
            raise
        except recurring_ical_events.InvalidCalendar as exc:
            raise CalendarUnreadable(f"An event cannot be read: {exc}"[:300]) from exc
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            raise CalendarUnreadable(f"An event cannot be read: {exc}"[:300]) from exc
    return sorted(found.values())


def _interval(event: Any, zone: ZoneInfo) -> BusyInterval | None:
    start = event.get("dtstart")
    if start is None:
        return None
    starts_at = _moment(start.dt, zone)
    end = event.get("dtend")
    if end is not None:
        ends_at = _moment(end.dt, zone)
    elif event.get("duration") is not None:
        ends_at = starts_at + event["duration"].dt
    elif isinstance(start.dt, datetime):
        return None  # a moment, not a span (RFC 5545: it takes no time)
    else:
        ends_at = _moment(start.dt + timedelta(days=1), zone)
    if ends_at <= starts_at:
        return None
    recurrence = event.get("recurrence-id")
    original = _moment(recurrence.dt, zone) if recurrence is not None else starts_at
    key = f"{event.get('uid', '')}|{original.isoformat()}"
    return BusyInterval(starts_at=starts_at, ends_at=ends_at, key=key)
