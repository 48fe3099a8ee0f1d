"""Journey read costs, beside baselines from the same run: `python -m bench.journey`.

* One booking's journey with ~50 events (history, SMS with their statuses, an offer,
  a promise, feedback)  vs  the same booking's plain history (``GET .../history``).
* Journey metrics over 30 days of a business with 100,000 bookings (reminders, changes,
  offers, feedback, promises on a share of them)  vs  the floor: counting the same
  bookings by day (one index range scan, nothing joined). The metrics are read from the
  per-day summaries (journey_day, migration 2026-12-02T04:30): once as they stand, once
  after a write to one booking (its day is rebuilt), and once with the summaries deleted
  before each read (every day counted again from its bookings: what each read cost
  before the summaries), then that without the journey's by-booking indexes (migration
  2026-12-02T02:20), to show what they buy.

In-process service calls on its own database (booking_bench_journey, recreated) on the
local PostgreSQL; prints figures and ratios, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from bench.guarantee import migrate, recreate
from bench.stats import Latency, ratio
from booking import db
from booking.access.principal import Principal
from booking.bookings.queries import booking_history
from booking.journey.metrics import journey_metrics
from booking.journey.timeline import booking_journey

ADMIN = Principal(kind="admin", id="bench")
DEFAULT_URL = "postgresql://postgres@127.0.0.1:54329/booking_bench_journey"
ROME = ZoneInfo("Europe/Rome")
STAFF = 100
SLOTS_PER_DAY = 36  # 20-minute appointments from 08:00


async def seed(bookings: int, days: int) -> tuple[UUID, UUID]:
    """A business with ``bookings`` over ``days`` past days, and one booking with ~50 events."""
    async with db.transaction() as conn:
        business: UUID = await conn.fetchval(
            "INSERT INTO business (slug, name, time_zone, min_notice_minutes) "
            "VALUES ('bench-journey', 'Bench', 'Europe/Rome', 0) RETURNING id"
        )
        service: UUID = await conn.fetchval(
            "INSERT INTO service (business_id, name, duration_minutes) "
            "VALUES ($1, 'Cut', 20) RETURNING id",
            business,
        )
        await conn.execute(
            "INSERT INTO staff (business_id, name) "
            "SELECT $1, 'Staff ' || n FROM generate_series(1, $2) AS n",
            business,
            STAFF,
        )
        await conn.execute(
            "INSERT INTO customer (business_id, name, phone) "
            "SELECT $1, 'Customer ' || n, '+3933' || lpad(n::text, 8, '0') "
            "FROM generate_series(1, $2) AS n",
            business,
            bookings,
        )
        first_day = datetime.now(ROME).date() - timedelta(days=days)
        # Booking n: staff n % STAFF, slot (n / STAFF) % SLOTS_PER_DAY, day by n.
        await conn.execute(
            """
            WITH st AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM staff
                        WHERE business_id = $1),
                 cu AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM customer
                        WHERE business_id = $1),
                 n AS (SELECT g AS n, (g / $4) % $5 AS slot, (g / ($4 * $5)) AS day
                       FROM generate_series(0, $3 - 1) AS g)
            INSERT INTO booking (business_id, staff_id, service_id, customer_id, status, channel,
                reference_code, starts_at, ends_at, blocked_from, blocked_until, change_count,
                created_at)
            SELECT $1, st.id, $2, cu.id,
                   (ARRAY['completed', 'completed', 'completed', 'no_show', 'cancelled',
                          'confirmed'])[1 + n.n % 6],
                   (ARRAY['web', 'partner', 'front_desk', 'mobile'])[1 + n.n % 4],
                   'R' || lpad(n.n::text, 7, '0'),
                   t.at, t.at + interval '20 minutes', t.at, t.at + interval '20 minutes',
                   CASE WHEN n.n % 5 = 0 THEN 1 ELSE 0 END, t.at - interval '3 days'
            FROM n
            JOIN st ON st.k = n.n % $4
            JOIN cu ON cu.k = n.n
            CROSS JOIN LATERAL (
                SELECT (($6::date + n.day::int) + time '08:00'
                        + make_interval(mins => 20 * n.slot::int)) AT TIME ZONE 'Europe/Rome'
                       AS at) AS t
            """,
            business,
            service,
            bookings,
            STAFF,
            SLOTS_PER_DAY,
            first_day,
        )
        # History: created for all; changed for a fifth; confirmed-from-pending for a tenth.
        await conn.execute(
            """
            INSERT INTO booking_history (booking_id, business_id, occurred_at, event,
                                         from_status, to_status, actor_type, actor_id, channel)
            SELECT b.id, b.business_id, b.created_at, 'booking.created', NULL, 'confirmed',
                   'partner', 'bench', b.channel FROM booking b WHERE b.business_id = $1
            UNION ALL
            SELECT b.id, b.business_id, b.created_at + interval '1 day', 'booking.changed',
                   'confirmed', 'confirmed', 'customer', 'bench', 'web'
            FROM booking b WHERE b.business_id = $1 AND b.change_count > 0
            UNION ALL
            SELECT b.id, b.business_id, b.created_at + interval '40 minutes',
                   'booking.confirmed', 'pending', 'confirmed', 'staff', 'bench', 'front_desk'
            FROM booking b WHERE b.business_id = $1 AND right(b.reference_code, 1) = '7'
            """,
            business,
        )
        # A reminder for four in five (three in four of those delivered).
        await conn.execute(
            """
            INSERT INTO message (business_id, booking_id, customer_id, dedupe_key, template,
                                 locale, to_phone, body, status, created_at, sent_at,
                                 delivered_at)
            SELECT b.business_id, b.id, b.customer_id, 'reminder:' || b.id, 'reminder', 'it',
                   '+390000000', 'x',
                   CASE WHEN right(b.reference_code, 1) IN ('1', '2', '3') THEN 'sent'
                        ELSE 'delivered' END,
                   b.starts_at - interval '1 day', b.starts_at - interval '1 day',
                   b.starts_at - interval '1 day' + interval '5 seconds'
            FROM booking b WHERE b.business_id = $1 AND right(b.reference_code, 1) <> '0'
            """,
            business,
        )
        await conn.execute(
            """
            INSERT INTO reschedule_offer (business_id, booking_id, kind, status, expires_at,
                                          created_at, decided_at)
            SELECT b.business_id, b.id, 'lost_slot',
                   CASE WHEN right(b.reference_code, 2) < '25' THEN 'accepted' ELSE 'expired' END,
                   b.starts_at - interval '1 day', b.starts_at - interval '2 days',
                   b.starts_at - interval '1 day'
            FROM booking b WHERE b.business_id = $1 AND right(b.reference_code, 2) < '50'
              AND b.status <> 'confirmed' AND b.id::text LIKE '0%'
            """,
            business,
        )
        await conn.execute(
            """
            INSERT INTO feedback (business_id, booking_id, status, ask_at, asked_at, score,
                                  channel, received_at)
            SELECT b.business_id, b.id, 'received', b.ends_at, b.ends_at,
                   1 + (abs(hashtext(b.id::text)) % 5), 'sms', b.ends_at + interval '1 hour'
            FROM booking b WHERE b.business_id = $1 AND b.status = 'completed'
              AND right(b.reference_code, 1) IN ('2', '5', '8')
            """,
            business,
        )
        await conn.execute(
            """
            INSERT INTO promise (business_id, booking_id, kind, subject, made_at, nudge_at,
                                 due_at, status)
            SELECT b.business_id, b.id, 'confirmation', b.id::text, b.created_at,
                   b.created_at + interval '1 hour', b.created_at + interval '2 hours',
                   CASE WHEN right(b.reference_code, 2) = '17' THEN 'broken' ELSE 'kept' END
            FROM booking b WHERE b.business_id = $1 AND right(b.reference_code, 1) = '7'
            """,
            business,
        )
        busy = await _busy_booking(conn, business)
    async with db.connection() as conn:
        await conn.execute("ANALYZE")
    return business, busy


async def _busy_booking(conn: Any, business: UUID) -> UUID:
    """One booking with 50 journey events: 20 history rows, 8 SMS (3 steps each),
    an offer (2), a promise (2) - plus what the bulk seed gave it."""
    booking: UUID = await conn.fetchval(
        "SELECT id FROM booking WHERE business_id = $1 AND status = 'completed' "
        "ORDER BY starts_at DESC LIMIT 1",
        business,
    )
    await conn.execute(
        """
        INSERT INTO booking_history (booking_id, business_id, occurred_at, event, from_status,
                                     to_status, actor_type, actor_id, channel, changes)
        SELECT $1, $2, now() - make_interval(mins => 100 - n), 'booking.changed', 'confirmed',
               'confirmed', 'staff', 'bench', 'front_desk',
               jsonb_build_object('starts_at', jsonb_build_object('from', now(), 'to', now()))
        FROM generate_series(1, 19) AS n
        """,
        booking,
        business,
    )
    await conn.execute(
        """
        INSERT INTO message (business_id, booking_id, customer_id, dedupe_key, template, locale,
                             to_phone, body, status, provider_status, created_at, sent_at,
                             delivered_at)
        SELECT b.business_id, b.id, b.customer_id, 'busy:' || n, 'booking_changed', 'it',
               '+390000000', 'x', 'delivered', 'delivered', now() - make_interval(mins => 99 - n),
               now() - make_interval(mins => 99 - n), now() - make_interval(mins => 98 - n)
        FROM booking b, generate_series(1, 7) AS n WHERE b.id = $1
        """,
        booking,
    )
    await conn.execute(
        "INSERT INTO reschedule_offer (business_id, booking_id, kind, status, expires_at, "
        "decided_at) VALUES ($2, $1, 'lost_slot', 'expired', now() - interval '1 hour', "
        "now() - interval '1 hour')",
        booking,
        business,
    )
    await conn.execute(
        "INSERT INTO promise (business_id, booking_id, kind, subject, made_at, nudge_at, due_at, "
        "status, nudged_at, resolved_at) VALUES ($2, $1, 'reply', 'busy', now() - interval "
        "'3 hours', now() - interval '2 hours', now() - interval '1 hour', 'kept', "
        "now() - interval '2 hours', now() - interval '90 minutes')",
        booking,
        business,
    )
    return booking


async def sampled(call: Callable[[], Awaitable[Any]], runs: int) -> list[float]:
    for _ in range(min(5, runs)):
        await call()  # warm: plans, pool, zone cache
    samples: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


async def timed(call: Callable[[], Awaitable[Any]], runs: int) -> Latency:
    return Latency.of(await sampled(call, runs))


def line(name: str, value: Latency, baseline: Latency | None = None) -> None:
    versus = f"  ({ratio(value.p99_ms, baseline.p99_ms):.1f}x baseline p99)" if baseline else ""
    print(f"  {name:<58} p50 {value.p50_ms:8.2f} ms  p99 {value.p99_ms:8.2f} ms{versus}")


async def run(url: str, bookings: int, days: int, runs: int) -> None:
    await db.start_pool(url, 2, 4)
    try:
        started = time.perf_counter()
        business, busy = await seed(bookings, days)
        took = time.perf_counter() - started
        print(f"seeded {bookings} bookings over {days} days in {took:.0f} s")
        events = len((await booking_journey(ADMIN, busy)).entries)
        print(f"journey of one booking ({events} events), {runs * 10} runs:")
        history = await timed(lambda: booking_history(ADMIN, busy), runs * 10)
        journey = await timed(lambda: booking_journey(ADMIN, busy), runs * 10)
        line("baseline: GET history (history rows only)", history)
        line("journey (history, SMS, deliveries, offers, promises)", journey, history)
        today = datetime.now(ROME).date()
        first, last = today - timedelta(days=days), today - timedelta(days=1)
        starts = datetime.combine(first, datetime.min.time(), ROME).astimezone(UTC)
        ends = datetime.combine(today, datetime.min.time(), ROME).astimezone(UTC)

        async def floor() -> None:
            async with db.connection() as conn:
                await conn.fetch(
                    "SELECT (starts_at AT TIME ZONE 'Europe/Rome')::date, count(*) FROM booking "
                    "WHERE business_id = $1 AND starts_at >= $2 AND starts_at < $3 "
                    "AND status NOT IN ('held', 'expired') GROUP BY 1",
                    business,
                    starts,
                    ends,
                )

        async def metrics() -> None:
            await journey_metrics(ADMIN, business, first, last)

        async def metrics_after_a_change() -> None:
            async with db.connection() as conn:
                await conn.execute(
                    "UPDATE booking SET change_count = change_count + 1 WHERE id = $1", busy
                )
            await metrics()

        async def metrics_unsummarized() -> None:
            async with db.connection() as conn:
                await conn.execute("DELETE FROM journey_day WHERE business_id = $1", business)
            await metrics()

        print(f"journey metrics over {days} days ({bookings} bookings), {runs} runs:")
        counted = await timed(floor, runs)
        line("baseline: count the period's bookings by day", counted)
        async with db.connection() as conn:
            notes = await conn.fetchval("SELECT count(*) FROM journey_change")
        started = time.perf_counter()
        await metrics()
        first_read = (time.perf_counter() - started) * 1000
        print(
            f"  first read after the seed: {first_read:.0f} ms (folds {notes} change notes, "
            f"builds {days} day summaries)"
        )
        summed = await timed(metrics, runs)
        line("journey metrics (every figure, from the day summaries)", summed, counted)
        changed = await timed(metrics_after_a_change, runs)
        line("journey metrics after one booking changed (its day rebuilt)", changed, counted)
        unsummarized = await timed(metrics_unsummarized, runs)
        line("journey metrics, no summaries (every day counted again)", unsummarized, counted)
        async with db.connection() as conn:
            await conn.execute(
                "DROP INDEX reschedule_offer_booking_idx, promise_booking_idx, "
                "waitlist_entry_booking_idx, outbox_aggregate_idx"
            )
        bare = await timed(metrics_unsummarized, runs)
        line("the same without the journey's by-booking indexes", bare, counted)
        slow = await timed(lambda: booking_journey(ADMIN, busy), runs * 10)
        line("journey without the journey's by-booking indexes", slow, history)
        await write_cost(busy, runs * 10)
    finally:
        await db.close_pool()


async def write_cost(booking: UUID, runs: int) -> None:
    """What the change notes cost a write: one history row inserted, one booking updated,
    each with the trigger journey_note_change and, alternating, with it disabled."""

    async def insert_history() -> None:
        async with db.connection() as conn:
            await conn.execute(
                "INSERT INTO booking_history (booking_id, business_id, event, actor_type, "
                "actor_id, channel) SELECT id, business_id, 'booking.note', 'system', "
                "'bench', 'system' FROM booking WHERE id = $1",
                booking,
            )

    async def update_booking() -> None:
        async with db.connection() as conn:
            await conn.execute(
                "UPDATE booking SET change_count = change_count + 1 WHERE id = $1", booking
            )

    async def triggers(enabled: bool) -> None:
        verb = "ENABLE" if enabled else "DISABLE"
        async with db.connection() as conn:
            await conn.execute(f"ALTER TABLE booking_history {verb} TRIGGER journey_note_change")
            await conn.execute(f"ALTER TABLE booking {verb} TRIGGER journey_note_change_update")

    print(f"write cost of the change notes, {runs} writes each, alternating:")
    for name, write in (
        ("insert one history row", insert_history),
        ("update one booking (change_count)", update_booking),
    ):
        samples: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(5):
            for enabled in (False, True):
                await triggers(enabled)
                samples[enabled] += await sampled(write, runs // 5)
        without, with_notes = Latency.of(samples[False]), Latency.of(samples[True])
        line(f"{name}, no note (trigger disabled)", without)
        line(f"{name}, with its note", with_notes, without)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bookings", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args(argv)
    os.environ.setdefault("PICCOLO_CONF", "booking.piccolo_conf")
    asyncio.run(recreate(args.database_url))
    migrate(args.database_url)
    asyncio.run(run(args.database_url, args.bookings, args.days, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
