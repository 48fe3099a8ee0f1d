"""Expanding a series rule into occurrence times: pure, no I/O.

A rule is an RFC 5545 RRULE (``FREQ=WEEKLY;COUNT=10``, ``RRULE:`` prefix optional) from
a first start, or an explicit list of dates. The rule runs on the business's wall
clock (a 10:00 class stays at 10:00 across a DST change); a wall time that falls in
the spring gap moves forward by the gap, as working hours do. Occurrences are
returned in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import islice
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from booking.errors import InvalidInput

MAX_OCCURRENCES = 52  # a year of weekly sessions; more is refused (documented in README)
_ALLOWED_FREQ = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})


def expand_rule(rule: str, first: datetime, tz: ZoneInfo) -> list[datetime]:
    """The occurrences of ``rule`` starting at ``first`` (aware), in UTC.

    Refused (InvalidInput): unreadable rules, rules that never end (no COUNT or
    UNTIL), finer than daily, more than :data:`MAX_OCCURRENCES`, or none at all.
    """
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[len("RRULE:") :]
    upper = text.upper()
    if not text or any(part in upper for part in ("DTSTART", "\n", "EXDATE", "RDATE")):
        raise InvalidInput(
            "rule must be one RRULE line such as FREQ=WEEKLY;COUNT=10.", field="rule"
        )
    if "COUNT=" not in upper and "UNTIL=" not in upper:
        raise InvalidInput(
            f"The rule never ends: give COUNT or UNTIL (at most {MAX_OCCURRENCES}).",
            field="rule",
        )
    frequency = re.search(r"(?:^|;)FREQ=([A-Z]+)", upper)
    if frequency is None or frequency.group(1) not in _ALLOWED_FREQ:
        raise InvalidInput("rule must repeat DAILY, WEEKLY, MONTHLY or YEARLY.", field="rule")
    local_first = first.astimezone(tz).replace(tzinfo=None)
    try:
        parsed = rrulestr(text, dtstart=local_first, ignoretz=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(f"rule is not a valid RRULE: {exc}.", field="rule") from None
    if not isinstance(parsed, rrule):
        raise InvalidInput("rule must be one RRULE line.", field="rule")
    try:
        local = list(islice(parsed, MAX_OCCURRENCES + 1))
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(f"rule cannot be expanded: {exc}.", field="rule") from None
    return _checked([_on_wall_clock(moment, tz) for moment in local])


def expand_dates(dates: Sequence[datetime]) -> list[datetime]:
    """An explicit list of starts (aware), sorted, in UTC; duplicates refused."""
    for moment in dates:
        if moment.tzinfo is None:
            raise InvalidInput(
                "Each date needs an offset, e.g. 2026-03-29T09:00:00+02:00.", field="dates"
            )
    moments = sorted(moment.astimezone(UTC) for moment in dates)
    if len(set(moments)) != len(moments):
        raise InvalidInput("dates lists the same time twice.", field="dates")
    return _checked(moments)


def _checked(moments: list[datetime]) -> list[datetime]:
    if not moments:
        raise InvalidInput("The rule gives no occurrence.", field="rule")
    if len(moments) > MAX_OCCURRENCES:
        raise InvalidInput(
            f"A series has at most {MAX_OCCURRENCES} occurrences.",
            field="rule",
            max_occurrences=MAX_OCCURRENCES,
        )
    return moments


def _on_wall_clock(local: datetime, tz: ZoneInfo) -> datetime:
    """A naive wall time in ``tz`` as UTC; a time in the spring gap moves forward by it
    (fold=0 reads it with the offset before the change)."""
    return local.replace(tzinfo=tz).astimezone(UTC)
