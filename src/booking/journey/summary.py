"""Per-day summaries of the journey metrics, kept current by change notes.

One ``journey_day`` row per business and local day holds that day's figures, counted by
the statements below: the metrics' own statements, grouped by day as well and run only
for the days asked for. Every figure is a sum over bookings and a booking belongs to one
day (its appointment's, in the business's zone), so the period's figures are sums of its
days' - except the confirmation percentiles, for which each day keeps the minutes
themselves. Names of services and staff are looked up when read, not stored.

Kept current: a trigger (``journey_note_change``, migration 2026-12-02T04:30) notes every
write to a booking or to a history row, SMS, offer or feedback of a booking in
``journey_change``. Before reading, :func:`bring_up_to_date` deletes the business's
notes, drops the summaries of the days they name (the booking's day now, and the day it
left when it moved or went), and builds every day of the period that has no summary in
the business's current zone, counted by the current statements (``counted_by``, a
digest of them). It runs under a per-business advisory lock, so a build from
an older snapshot never lands after a newer one; a note committed after the deleting
statement's snapshot stays for the next read. Today, written to all day, is rebuilt on
almost every read: one day's bookings, not the period's. A worker cron
(:func:`fold_all_notes`) folds the notes of businesses whose metrics nobody reads.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from booking import db

# pg_advisory_xact_lock(class, key): serializes the summary work of one business.
LOCK_CLASS = 1414

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
"""

# The minutes as percentile_cont reads them (numeric cast to double precision).
_CONFIRMATION = """
SELECT (b.starts_at AT TIME ZONE $4)::date AS day,
       array_agg((extract(epoch FROM (h.occurred_at - b.created_at)) / 60.0)::float8)
           AS minutes
FROM booking b
JOIN booking_history h ON h.business_id = b.business_id AND h.booking_id = b.id
WHERE b.business_id = $1 AND b.starts_at >= $2 AND b.starts_at < $3
  AND h.event = 'booking.confirmed' AND h.from_status = 'pending'
GROUP BY 1
"""

# Distinct bookings per actor add up over days: a booking has one day.
_CHANGED_BY = """
SELECT (b.starts_at AT TIME ZONE $4)::date AS day,
       CASE WHEN h.actor_type = 'staff' THEN coalesce(k.role, 'front_desk')
            ELSE h.actor_type END AS actor,
       count(DISTINCT h.booking_id) AS bookings
FROM booking b
JOIN booking_history h ON h.business_id = b.business_id AND h.booking_id = b.id
LEFT JOIN api_key k ON h.actor_type = 'staff'
    AND k.id = (CASE WHEN h.actor_id ~ '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
                     THEN h.actor_id::uuid END)
WHERE b.business_id = $1 AND b.starts_at >= $2 AND b.starts_at < $3
  AND b.status NOT IN ('held', 'expired') AND h.event = 'booking.changed'
GROUP BY 1, 2
"""

_FEEDBACK = """
SELECT (b.starts_at AT TIME ZONE $4)::date AS day, b.service_id, b.staff_id, b.channel,
       count(*) AS n, count(f.score) AS scored, coalesce(sum(f.score), 0) AS score_sum
FROM booking b
JOIN feedback f ON f.business_id = b.business_id AND f.booking_id = b.id
WHERE b.business_id = $1 AND b.starts_at >= $2 AND b.starts_at < $3
  AND f.status = 'received'
GROUP BY 1, 2, 3, 4
"""

_MOMENTS = """
WITH bk AS (
    SELECT b.id, (b.starts_at AT TIME ZONE $4)::date AS day FROM booking b
    WHERE b.business_id = $1 AND b.starts_at >= $2 AND b.starts_at < $3
      AND b.status NOT IN ('held', 'expired')
), outcome AS (
    SELECT bk.day, h.booking_id, h.occurred_at AS at, 'cancellation' AS outcome
    FROM bk JOIN booking_history h ON h.business_id = $1 AND h.booking_id = bk.id
    WHERE h.event = 'booking.cancelled'
  UNION ALL
    SELECT bk.day, f.booking_id, f.received_at, 'low_score'
    FROM bk JOIN feedback f ON f.business_id = $1 AND f.booking_id = bk.id
    WHERE f.status = 'received' AND f.score <= $5
)
SELECT o.day, o.outcome, before.touchpoint, count(*) AS n
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
GROUP BY 1, 2, 3
"""

# Deletes the notes and names the days they touch: the day a noted booking is on now,
# and the day it was on before a move or a delete.
_FOLD_NOTES = """
WITH noted AS (
    DELETE FROM journey_change WHERE business_id = $1 RETURNING booking_id, starts_at
)
SELECT DISTINCT (t.at AT TIME ZONE $2)::date AS day FROM (
    SELECT starts_at AS at FROM noted WHERE starts_at IS NOT NULL
  UNION ALL
    SELECT b.starts_at FROM booking b
    WHERE b.business_id = $1 AND b.id IN (SELECT booking_id FROM noted)
) AS t
"""

_UPSERT = """
INSERT INTO journey_day (business_id, day, time_zone, figures, confirmation_minutes,
                         counted_by)
VALUES ($1, $2, $3, $4::jsonb, $5, $6)
ON CONFLICT (business_id, day) DO UPDATE
SET time_zone = EXCLUDED.time_zone, counted_by = EXCLUDED.counted_by,
    figures = EXCLUDED.figures, confirmation_minutes = EXCLUDED.confirmation_minutes,
    built_at = now()
"""


def _counted_by(low_score: int) -> str:
    """A digest of what a summary row counts: rows counted by other statements (an older
    release, another low-score threshold) are not current and are built again."""
    text = "\n".join((_BOOKINGS, _CONFIRMATION, _CHANGED_BY, _FEEDBACK, _MOMENTS, str(low_score)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    starts = datetime.combine(day, time(), tz).astimezone(UTC)
    ends = datetime.combine(day + timedelta(days=1), time(), tz).astimezone(UTC)
    return starts, ends


async def bring_up_to_date(
    conn: asyncpg.Connection,
    business_id: UUID,
    zone_name: str,
    first: date,
    last: date,
    low_score: int,
) -> int:
    """Make every day from ``first`` to ``last`` have a current summary; returns how many
    days were built. Call inside the metrics' transaction (the lock is held to its end)."""
    await _lock(conn, business_id)
    await _fold_notes(conn, business_id, zone_name)
    built = {
        row["day"]
        for row in await conn.fetch(
            "SELECT day FROM journey_day WHERE business_id = $1 AND day >= $2 AND day <= $3 "
            "AND time_zone = $4 AND counted_by = $5",
            business_id,
            first,
            last,
            zone_name,
            _counted_by(low_score),
        )
    }
    missing = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    missing = [day for day in missing if day not in built]
    if missing:
        await _build(conn, business_id, zone_name, missing, low_score)
    return len(missing)


async def fold_all_notes() -> int:
    """Worker cron: fold every business's notes into dropped summaries, so the notes of a
    business whose metrics nobody reads do not pile up. Returns how many businesses."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT b.id, b.time_zone FROM business b "
            "WHERE EXISTS (SELECT 1 FROM journey_change c WHERE c.business_id = b.id)"
        )
    for row in rows:
        async with db.transaction() as conn:
            await _lock(conn, row["id"])
            await _fold_notes(conn, row["id"], row["time_zone"])
    return len(rows)


async def _lock(conn: asyncpg.Connection, business_id: UUID) -> None:
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2::text))", LOCK_CLASS, str(business_id)
    )


async def _fold_notes(conn: asyncpg.Connection, business_id: UUID, zone_name: str) -> None:
    touched = [row["day"] for row in await conn.fetch(_FOLD_NOTES, business_id, zone_name)]
    if touched:
        await conn.execute(
            "DELETE FROM journey_day WHERE business_id = $1 AND day = ANY ($2::date[])",
            business_id,
            touched,
        )


async def _build(
    conn: asyncpg.Connection, business_id: UUID, zone_name: str, days: list[date], low_score: int
) -> None:
    """Count ``days`` again, one run of consecutive days at a time: a plain range of
    ``starts_at`` that the planner estimates well (a filter on the day expression it
    guesses at 0.5% of the rows, and nests loops over thousands)."""
    tz = ZoneInfo(zone_name)
    for run in _runs(sorted(days)):
        starts, _ = _day_bounds(run[0], tz)
        _, ends = _day_bounds(run[-1], tz)
        args = (business_id, starts, ends, zone_name)
        figures: dict[date, dict[str, list[dict[str, Any]]]] = defaultdict(
            lambda: {"channels": [], "changed_by": [], "feedback": [], "moments": []}
        )
        for part, statement, extra in (
            ("channels", _BOOKINGS, ()),
            ("changed_by", _CHANGED_BY, ()),
            ("feedback", _FEEDBACK, ()),
            ("moments", _MOMENTS, (low_score,)),
        ):
            for row in await conn.fetch(statement, *args, *extra):
                record = dict(row)
                figures[record.pop("day")][part].append(record)
        minutes = {row["day"]: row["minutes"] for row in await conn.fetch(_CONFIRMATION, *args)}
        await conn.executemany(
            _UPSERT,
            [
                (
                    business_id,
                    day,
                    zone_name,
                    json.dumps(figures[day], default=str),
                    minutes.get(day, []),
                    _counted_by(low_score),
                )
                for day in run
            ],
        )


def _runs(days: list[date]) -> list[list[date]]:
    """Sorted days cut into runs of consecutive days."""
    runs: list[list[date]] = []
    for day in days:
        if runs and day - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs
