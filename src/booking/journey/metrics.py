"""Journey metrics per business, computed from the same rows as the journeys.

The period is ``[from, to]``: calendar days in the business's zone, both included. A
booking belongs to the day of its appointment (``starts_at`` in the zone); holds and
expired holds are not bookings. Every figure names what it counts (:data:`COUNTS`), and
the per-day figures add up to the totals.

How it stays fast (bench/journey.py): every statement starts from the bookings of one
business in the period through ``booking_business_start_idx (business_id, starts_at,
id)`` and reaches each other table by ``(business_id, booking_id)`` - the journey's
indexes (migration 2026-12-02T02:20) - so the work grows with the period's bookings,
never with the tables' history. The bookings' figures are one GROUP BY (day, channel)
pass; the rest are small aggregates over the same set. JIT is off for these statements
(its compilation, not the work, was most of the time at 100,000 bookings).
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

_BOOKINGS = """
WITH bk AS (
    SELECT b.id, b.channel, b.status, b.change_count, b.starts_at,
           (b.starts_at AT TIME ZONE $4)::date AS day
    FROM booking b
    WHERE b.business_id = $1 AND b.starts_at >= $2 AND b.starts_at < $3
      AND b.status NOT IN ('held', 'expired')
), rem AS (
    SELECT m.booking_id, bool_or(m.sent_at IS NOT NULL) AS sent,
           bool_or(m.status = 'delivered') AS delivered
    FROM bk JOIN message m ON m.business_id = $1 AND m.booking_id = bk.id
    WHERE m.template = 'reminder' GROUP BY m.booking_id
), lost AS (
    SELECT o.booking_id,
           bool_or(o.status = 'accepted' AND o.decided_at < bk.starts_at) AS recovered
    FROM bk JOIN reschedule_offer o ON o.business_id = $1 AND o.booking_id = bk.id
    WHERE o.kind = 'lost_slot' GROUP BY o.booking_id
), fb AS (
    SELECT f.booking_id, f.score
    FROM bk JOIN feedback f ON f.business_id = $1 AND f.booking_id = bk.id
    WHERE f.status = 'received'
)
SELECT bk.day, bk.channel,
       count(*) AS bookings,
       count(*) FILTER (WHERE bk.change_count > 0) AS changed,
       count(*) FILTER (WHERE bk.status IN ('checked_in', 'completed', 'no_show')) AS attended,
       count(*) FILTER (WHERE bk.status = 'no_show') AS no_shows,
       count(*) FILTER (WHERE bk.status IN ('checked_in', 'completed', 'no_show')
                        AND rem.delivered) AS attended_reminded,
       count(*) FILTER (WHERE bk.status = 'no_show' AND rem.delivered) AS no_shows_reminded,
       count(rem.booking_id) FILTER (WHERE rem.sent) AS reminders_sent,
       count(rem.booking_id) FILTER (WHERE rem.delivered) AS reminders_delivered,
       count(lost.booking_id) AS lost,
       count(lost.booking_id) FILTER (WHERE lost.recovered) AS recovered,
       count(fb.score) AS scores,
       coalesce(sum(fb.score), 0) AS score_sum
FROM bk
LEFT JOIN rem ON rem.booking_id = bk.id
LEFT JOIN lost ON lost.booking_id = bk.id
LEFT JOIN fb ON fb.booking_id = bk.id
GROUP BY bk.day, bk.channel
ORDER BY bk.day, bk.channel
"""

_CONFIRMATION = """
SELECT count(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY minutes) AS p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY minutes) AS p90
FROM (
    SELECT extract(epoch FROM (h.occurred_at - b.created_at)) / 60.0 AS minutes
    FROM booking b
    JOIN booking_history h ON h.business_id = b.business_id AND h.booking_id = b.id
    WHERE b.business_id = $1 AND b.starts_at >= $2 AND b.starts_at < $3
      AND h.event = 'booking.confirmed' AND h.from_status = 'pending'
) AS waited
"""

_CHANGED_BY = """
SELECT CASE WHEN h.actor_type = 'staff' THEN coalesce(k.role, 'front_desk')
            ELSE h.actor_type END AS actor,
       count(DISTINCT h.booking_id) AS bookings
FROM booking b
JOIN booking_history h ON h.business_id = b.business_id AND h.booking_id = b.id
LEFT JOIN api_key k ON h.actor_type = 'staff'
    AND k.id = (CASE WHEN h.actor_id ~ '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
                     THEN h.actor_id::uuid END)
WHERE b.business_id = $1 AND b.starts_at >= $2 AND b.starts_at < $3
  AND b.status NOT IN ('held', 'expired') AND h.event = 'booking.changed'
GROUP BY 1 ORDER BY 1
"""

_PROMISES = """
SELECT kind, status, count(*) AS n FROM promise
WHERE business_id = $1 AND due_at >= $2 AND due_at < $3 AND status <> 'open'
GROUP BY kind, status
"""

_FEEDBACK_BY = """
SELECT s.name AS service, st.name AS staff, b.channel, count(*) AS n,
       round(avg(f.score), 2)::float AS mean
FROM booking b
JOIN feedback f ON f.business_id = b.business_id AND f.booking_id = b.id
JOIN service s ON s.business_id = b.business_id AND s.id = b.service_id
JOIN staff st ON st.business_id = b.business_id AND st.id = b.staff_id
WHERE b.business_id = $1 AND b.starts_at >= $2 AND b.starts_at < $3
  AND f.status = 'received'
GROUP BY GROUPING SETS ((s.name), (st.name), (b.channel))
"""

_MOMENTS = """
WITH bk AS (
    SELECT b.id FROM booking b
    WHERE b.business_id = $1 AND b.starts_at >= $2 AND b.starts_at < $3
      AND b.status NOT IN ('held', 'expired')
), outcome AS (
    SELECT h.booking_id, h.occurred_at AS at, 'cancellation' AS outcome
    FROM bk JOIN booking_history h ON h.business_id = $1 AND h.booking_id = bk.id
    WHERE h.event = 'booking.cancelled'
  UNION ALL
    SELECT f.booking_id, f.received_at, 'low_score'
    FROM bk JOIN feedback f ON f.business_id = $1 AND f.booking_id = bk.id
    WHERE f.status = 'received' AND f.score <= $4
)
SELECT o.outcome, before.touchpoint, count(*) AS n
FROM outcome o
CROSS JOIN LATERAL (
    SELECT t.touchpoint FROM (
        SELECT h.event AS touchpoint, h.occurred_at AS at, h.id AS seq
        FROM booking_history h
        WHERE h.business_id = $1 AND h.booking_id = o.booking_id AND h.occurred_at <= o.at
          AND h.event NOT IN ('booking.cancelled', 'feedback.received', 'booking.completed',
                              'booking.checked_in')
      UNION ALL
        SELECT 'sms.' || m.template, coalesce(m.sent_at, m.created_at), 0
        FROM message m
        WHERE m.business_id = $1 AND m.booking_id = o.booking_id
          AND m.customer_id IS NOT NULL AND coalesce(m.sent_at, m.created_at) <= o.at
          AND m.template NOT IN ('booking_cancelled', 'feedback_request')
    ) AS t
    ORDER BY t.at DESC, t.seq DESC LIMIT 1
) AS before
GROUP BY o.outcome, before.touchpoint
ORDER BY o.outcome, n DESC, before.touchpoint
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
        zone_name = await conn.fetchval("SELECT time_zone FROM business WHERE id = $1", business_id)
        if zone_name is None:
            raise NotFound("No such business.")
        period = period_of(first, last, ZoneInfo(zone_name))
        args = (business_id, period.starts, period.ends)
        rows = await conn.fetch(_BOOKINGS, *args, zone_name)
        confirmation = await conn.fetchrow(_CONFIRMATION, *args)
        changed_by = await conn.fetch(_CHANGED_BY, *args)
        promise_rows = await conn.fetch(_PROMISES, *args)
        feedback_rows = await conn.fetch(_FEEDBACK_BY, *args)
        moments = await conn.fetch(_MOMENTS, *args, LOW_SCORE)
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
