"""Journey metrics per business, computed from the same rows as the journeys.

The period is ``[from, to]``: calendar days in the business's zone, both included. A
booking belongs to the day of its appointment (``starts_at`` in the zone); holds and
expired holds are not bookings. Every figure names what it counts (:data:`COUNTS`), and
the per-day figures add up to the totals.

How it stays fast (bench/journey.py): the figures are sums of per-day summaries
(``journey_day``, one row per business and local day; :mod:`booking.journey.summary`
builds them with the per-booking statements grouped by day, and rebuilds a day when a
trigger notes a write to one of its bookings, their history, SMS, offers or feedback).
A read over 30 days sums 30 rows; only days written since the last read (today, mostly)
are counted again from their bookings. Promises are read live: one index range over the
period's due times. JIT is off for these statements (its compilation, not the work, was
most of the time when the period's bookings were counted on every read).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from booking import db
from booking.access.principal import Principal
from booking.errors import InvalidInput, NotFound
from booking.journey.summary import bring_up_to_date

MAX_DAYS = 92
LOW_SCORE = 2
TOP_MOMENTS = 5

COUNTS: dict[str, str] = {
    "bookings": "bookings whose appointment falls in the period (holds excluded), by channel",
    "confirmation_minutes": (
        "minutes from request to confirmation, p50 and p90, for bookings that waited for "
        "confirmation (created pending, then confirmed)"
    ),
    "changed": (
        "share of the period's bookings changed at least once; by_actor counts the "
        "bookings each kind of actor changed"
    ),
    "lost_slots": (
        "bookings that lost their slot (a lost-slot offer was made); recovered = an offer "
        "accepted before the appointment"
    ),
    "reminders": "bookings with a reminder sent, and with a reminder Twilio reported delivered",
    "no_show": (
        "no-shows among attended-or-missed bookings (checked in, completed, no-show), "
        "with and without a delivered reminder"
    ),
    "promises": "promises due in the period: kept / (kept + broken), by kind",
    "feedback": "scores received (1-5) for the period's bookings: count and mean",
    "moments_of_truth": (
        "for bookings that were cancelled or scored <= 2, the touchpoint just before: the "
        "latest history event or SMS to the customer before the outcome (the visit itself, "
        "the feedback question and the cancellation SMS are not counted)"
    ),
}

# The period's figures, summed from its days' summaries (booking.journey.summary).
_DAYS = """
SELECT d.day, c.*
FROM journey_day d
CROSS JOIN jsonb_to_recordset(d.figures -> 'channels') AS c(
    channel text, bookings int, changed int, attended int, no_shows int,
    attended_reminded int, no_shows_reminded int, reminders_sent int,
    reminders_delivered int, lost int, recovered int, scores int, score_sum int)
WHERE d.business_id = $1 AND d.day >= $2 AND d.day <= $3
ORDER BY d.day, c.channel
"""

_CONFIRMATION = """
SELECT count(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY minutes) AS p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY minutes) AS p90
FROM journey_day d CROSS JOIN unnest(d.confirmation_minutes) AS minutes
WHERE d.business_id = $1 AND d.day >= $2 AND d.day <= $3
"""

_CHANGED_BY = """
SELECT a.actor, sum(a.bookings) AS bookings
FROM journey_day d
CROSS JOIN jsonb_to_recordset(d.figures -> 'changed_by') AS a(actor text, bookings int)
WHERE d.business_id = $1 AND d.day >= $2 AND d.day <= $3
GROUP BY 1 ORDER BY 1
"""

_PROMISES = """
SELECT kind, status, count(*) AS n FROM promise
WHERE business_id = $1 AND due_at >= $2 AND due_at < $3 AND status <> 'open'
GROUP BY kind, status
"""

# round(sum / count) is what round(avg(score)) computed over the same scores.
_FEEDBACK_BY = """
SELECT s.name AS service, st.name AS staff, f.channel, sum(f.n) AS n,
       round(sum(f.score_sum)::numeric / nullif(sum(f.scored), 0), 2)::float AS mean
FROM journey_day d
CROSS JOIN jsonb_to_recordset(d.figures -> 'feedback') AS f(
    service_id uuid, staff_id uuid, channel text, n int, scored int, score_sum int)
JOIN service s ON s.business_id = d.business_id AND s.id = f.service_id
JOIN staff st ON st.business_id = d.business_id AND st.id = f.staff_id
WHERE d.business_id = $1 AND d.day >= $2 AND d.day <= $3
GROUP BY GROUPING SETS ((s.name), (st.name), (f.channel))
"""

_MOMENTS = """
SELECT m.outcome, m.touchpoint, sum(m.n) AS n
FROM journey_day d
CROSS JOIN jsonb_to_recordset(d.figures -> 'moments') AS m(outcome text, touchpoint text, n int)
WHERE d.business_id = $1 AND d.day >= $2 AND d.day <= $3
GROUP BY m.outcome, m.touchpoint
ORDER BY m.outcome, sum(m.n) DESC, m.touchpoint
"""


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date
    tz: ZoneInfo

    @property
    def starts(self) -> datetime:
        return datetime.combine(self.first, time(), self.tz).astimezone(UTC)

    @property
    def ends(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), self.tz).astimezone(UTC)


def period_of(first: date, last: date, tz: ZoneInfo) -> Period:
    if last < first:
        raise InvalidInput("'to' is before 'from'.", field="to")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(f"At most {MAX_DAYS} days at a time.", field="to")
    return Period(first, last, tz)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


_SUMMED = (
    "bookings",
    "changed",
    "attended",
    "no_shows",
    "attended_reminded",
    "no_shows_reminded",
    "reminders_sent",
    "reminders_delivered",
    "lost",
    "recovered",
    "scores",
    "score_sum",
)


def _figures(sums: dict[str, int], by_channel: dict[str, int]) -> dict[str, Any]:
    """One day's (or the period's) figures from the summed counts."""
    unreminded_attended = sums["attended"] - sums["attended_reminded"]
    unreminded_no_shows = sums["no_shows"] - sums["no_shows_reminded"]
    return {
        "bookings": sums["bookings"],
        "bookings_by_channel": dict(sorted(by_channel.items())),
        "changed": sums["changed"],
        "changed_share": _rate(sums["changed"], sums["bookings"]),
        "lost_slots": sums["lost"],
        "lost_slots_recovered": sums["recovered"],
        "reminders_sent": sums["reminders_sent"],
        "reminders_delivered": sums["reminders_delivered"],
        "attended_or_missed": sums["attended"],
        "no_shows": sums["no_shows"],
        "no_show_rate": _rate(sums["no_shows"], sums["attended"]),
        "no_show_rate_reminder_delivered": _rate(
            sums["no_shows_reminded"], sums["attended_reminded"]
        ),
        "no_show_rate_no_reminder_delivered": _rate(unreminded_no_shows, unreminded_attended),
        "feedback_count": sums["scores"],
        "feedback_mean": round(sums["score_sum"] / sums["scores"], 2) if sums["scores"] else None,
    }


async def journey_metrics(
    principal: Principal, business_id: UUID, first: date, last: date
) -> dict[str, Any]:
    principal.require("bookings:read", business_id)
    async with db.transaction() as conn:
        # The planner overestimates the by-booking joins (millions of rows for a CTE it
        # cannot see into) and turns on JIT, whose compilation cost seconds under load in
        # bench/journey.py; the statements are simple aggregates that never need it.
        await conn.execute("SET LOCAL jit = off")
        # A day rebuilt is a few thousand bookings: probing offers, SMS and feedback by
        # booking beats hashing the business's whole tables, which the planner only sees
        # once it prices an index probe as the cached read it is (default 4.0 = disk).
        await conn.execute("SET LOCAL random_page_cost = 1.1")
        zone_name = await conn.fetchval("SELECT time_zone FROM business WHERE id = $1", business_id)
        if zone_name is None:
            raise NotFound("No such business.")
        period = period_of(first, last, ZoneInfo(zone_name))
        await bring_up_to_date(conn, business_id, zone_name, period.first, period.last, LOW_SCORE)
        days_args = (business_id, period.first, period.last)
        rows = await conn.fetch(_DAYS, *days_args)
        confirmation = await conn.fetchrow(_CONFIRMATION, *days_args)
        changed_by = await conn.fetch(_CHANGED_BY, *days_args)
        promise_rows = await conn.fetch(_PROMISES, business_id, period.starts, period.ends)
        feedback_rows = await conn.fetch(_FEEDBACK_BY, *days_args)
        moments = await conn.fetch(_MOMENTS, *days_args)
    days: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_SUMMED, 0))
    day_channels: dict[date, dict[str, int]] = defaultdict(dict)
    total = dict.fromkeys(_SUMMED, 0)
    channels: dict[str, int] = defaultdict(int)
    for row in rows:
        for name in _SUMMED:
            days[row["day"]][name] += row[name]
            total[name] += row[name]
        day_channels[row["day"]][row["channel"]] = row["bookings"]
        channels[row["channel"]] += row["bookings"]
    per_day = []
    day = period.first
    while day <= period.last:
        sums = days.get(day, dict.fromkeys(_SUMMED, 0))
        per_day.append({"date": day, **_figures(sums, day_channels.get(day, {}))})
        day += timedelta(days=1)
    totals = _figures(total, channels)
    totals["changed_by"] = {row["actor"]: row["bookings"] for row in changed_by}
    assert confirmation is not None
    totals["confirmation_minutes"] = {
        "count": confirmation["n"],
        "p50": None if confirmation["p50"] is None else round(confirmation["p50"], 1),
        "p90": None if confirmation["p90"] is None else round(confirmation["p90"], 1),
    }
    totals["promises"] = _promises(promise_rows)
    totals["feedback_by"] = {
        "service": _grouped(feedback_rows, "service"),
        "staff": _grouped(feedback_rows, "staff"),
        "channel": _grouped(feedback_rows, "channel"),
    }
    totals["moments_of_truth"] = _moments(moments)
    return {
        "business_id": business_id,
        "time_zone": zone_name,
        "from": period.first,
        "to": period.last,
        "counts": COUNTS,
        "totals": totals,
        "days": per_day,
    }


def _promises(rows: list[Any]) -> dict[str, Any]:
    by_kind: dict[str, dict[str, int]] = defaultdict(lambda: {"kept": 0, "broken": 0})
    for row in rows:
        by_kind[row["kind"]][row["status"]] = row["n"]
    kept = sum(v["kept"] for v in by_kind.values())
    broken = sum(v["broken"] for v in by_kind.values())
    return {
        "kept": kept,
        "broken": broken,
        "kept_rate": _rate(kept, kept + broken),
        "by_kind": {
            kind: {**v, "kept_rate": _rate(v["kept"], v["kept"] + v["broken"])}
            for kind, v in sorted(by_kind.items())
        },
    }


def _grouped(rows: list[Any], key: str) -> list[dict[str, Any]]:
    found = [
        {"name": row[key], "count": row["n"], "mean": row["mean"]}
        for row in rows
        if row[key] is not None
        and all(row[other] is None for other in ("service", "staff", "channel") if other != key)
    ]
    return sorted(found, key=lambda item: (item["mean"], item["name"]))


def _moments(rows: list[Any]) -> dict[str, list[dict[str, Any]]]:
    result: dict[str, list[dict[str, Any]]] = {"cancellation": [], "low_score": []}
    totals = dict.fromkeys(result, 0)
    for row in rows:
        totals[row["outcome"]] += row["n"]
    for row in rows:
        listed = result[row["outcome"]]
        if len(listed) < TOP_MOMENTS:
            listed.append(
                {
                    "touchpoint": row["touchpoint"],
                    "count": row["n"],
                    "share": _rate(row["n"], totals[row["outcome"]]),
                }
            )
    return result
