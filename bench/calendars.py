"""Staff calendar costs, beside a baseline from the same run: `python -m bench.calendars`.

* **Sync** of an ICS calendar with 1,000 events (200 of them weekly series) served by a
  local HTTP server: fetch, parse, expand (180 days), compare and write the blocks in
  one transaction - each run from no blocks (a full sync), p50/p99; and a re-sync of the
  unchanged calendar (everything kept).
* **Feed** of a member of staff with 2,000 bookings: the service call that reads the rows
  and renders the iCalendar, p99.
* **Baseline** for both: parsing the same ICS body with ``icalendar`` only.

In-process service calls on its own database (booking_bench_calendars, recreated) on the
shared local PostgreSQL; prints figures and ratios, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import icalendar
from aiohttp import web

from bench.guarantee import migrate as migrate_db
from bench.guarantee import recreate
from bench.stats import Latency, ratio
from booking import db
from booking.access.principal import Principal
from booking.calendars import feeds
from booking.calendars.connections import connect
from booking.calendars.sync import sync_connection
from booking.outbound import OutboundPolicy

ADMIN = Principal(kind="admin", id="bench")
DEFAULT_URL = "postgresql://postgres@127.0.0.1:54329/booking_bench_calendars"
ROME = ZoneInfo("Europe/Rome")
LOCAL = OutboundPolicy(allow_http=True, allow_private=True)


def calendar_body(events: int, recurring: int, start: datetime) -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//bench//EN")
    cal.add("version", "2.0")
    for index in range(events):
        event = icalendar.Event()
        event.add("uid", f"bench-{index}@example.org")
        event.add("dtstamp", start)
        day = start + timedelta(days=index % 170, hours=(index // 170) % 9)
        event.add("dtstart", day.astimezone(ROME))
        event.add("dtend", (day + timedelta(minutes=45)).astimezone(ROME))
        event.add("summary", f"Event {index}")
        if index < recurring:
            event.add("rrule", {"freq": "weekly", "count": 12})
            if index % 4 == 0:
                event.add("exdate", (day + timedelta(weeks=2)).astimezone(ROME))
        cal.add_component(event)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())


async def seed() -> tuple[UUID, UUID, UUID, UUID]:
    async with db.transaction() as conn:
        business: UUID = await conn.fetchval(
            "INSERT INTO business (slug, name, time_zone, min_notice_minutes, slot_step_minutes) "
            "VALUES ('bench-calendars', 'Bench', 'Europe/Rome', 0, 15) RETURNING id"
        )
        service: UUID = await conn.fetchval(
            "INSERT INTO service (business_id, name, duration_minutes) VALUES ($1, 'Cut', 30) "
            "RETURNING id",
            business,
        )
        synced: UUID = await conn.fetchval(
            "INSERT INTO staff (business_id, name) VALUES ($1, 'Synced') RETURNING id", business
        )
        booked: UUID = await conn.fetchval(
            "INSERT INTO staff (business_id, name) VALUES ($1, 'Booked') RETURNING id", business
        )
    return business, service, synced, booked


async def seed_bookings(business: UUID, service: UUID, staff: UUID, count: int) -> None:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    async with db.transaction() as conn:
        customer = await conn.fetchval(
            "INSERT INTO customer (business_id, name, phone) VALUES ($1, 'Anna Ferri', "
            "'+393331234567') RETURNING id",
            business,
        )
        await conn.executemany(
            """
            INSERT INTO booking (business_id, staff_id, service_id, customer_id, status, channel,
                reference_code, starts_at, ends_at, blocked_from, blocked_until)
            VALUES ($1, $2, $3, $4, 'confirmed', 'system', $5, $6::timestamptz,
                    $6::timestamptz + interval '30 minutes',
                    $6::timestamptz, $6::timestamptz + interval '30 minutes')
            """,
            [
                (business, staff, service, customer, f"B{i:05d}", start + timedelta(minutes=30 * i))
                for i in range(count)
            ],
        )


async def run(url: str, events: int, recurring: int, feed_bookings: int, runs: int) -> None:
    await db.start_pool(url, 2, 10)
    try:
        business, service, synced_staff, booked_staff = await seed()
        now = datetime.now(UTC)
        body = calendar_body(events, recurring, now + timedelta(days=1))
        app = web.Application()
        app.router.add_get("/cal.ics", lambda _: _serve(body))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        row, first = await connect(
            ADMIN,
            business,
            synced_staff,
            kind="ics",
            url=f"http://127.0.0.1:{port}/cal.ics",
            policy=LOCAL,
        )
        connection_id = row["id"]
        full: list[float] = []
        again: list[float] = []
        parse: list[float] = []
        for _ in range(runs):
            async with db.connection() as conn:
                await conn.execute(
                    "DELETE FROM time_off WHERE calendar_connection_id = $1", connection_id
                )
            began = time.perf_counter()
            report = await sync_connection(business, connection_id, policy=LOCAL, force=True)
            full.append(time.perf_counter() - began)
            began = time.perf_counter()
            await sync_connection(business, connection_id, policy=LOCAL, force=True)
            again.append(time.perf_counter() - began)
            began = time.perf_counter()
            icalendar.Calendar.from_ical(body)
            parse.append(time.perf_counter() - began)
        await runner.cleanup()
        print(
            f"calendar: {events} events ({recurring} weekly series), {len(body) / 1024:.0f} KiB, "
            f"{report.added} busy blocks in 180 days (first sync: {first.status})"
        )
        _line("sync from no blocks", full, parse)
        _line("re-sync, unchanged", again, parse)
        _line("baseline: icalendar parse only", parse, parse)

        await seed_bookings(business, service, booked_staff, feed_bookings)
        issued = await feeds.create_feed(ADMIN, business, booked_staff)
        feed_times: list[float] = []
        feed_parse: list[float] = []
        for _ in range(runs * 2):
            began = time.perf_counter()
            found = await feeds.feed_for_token(issued.token)
            feed_times.append(time.perf_counter() - began)
            began = time.perf_counter()
            icalendar.Calendar.from_ical(found.body)
            feed_parse.append(time.perf_counter() - began)
        print(f"feed: {feed_bookings} bookings, {len(found.body) / 1024:.0f} KiB")
        _line("feed (query + render)", feed_times, feed_parse)
        _line("baseline: icalendar parse only", feed_parse, feed_parse)
    finally:
        await db.close_pool()


async def _serve(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="text/calendar")


def _line(name: str, samples: list[float], baseline: list[float]) -> None:
    latency, base = Latency.of(samples), Latency.of(baseline)
    print(
        f"  {name:<34} n={latency.count:<3} p50 {latency.p50_ms:8.1f} ms  "
        f"p99 {latency.p99_ms:8.1f} ms  (p50 x{ratio(latency.p50_ms, base.p50_ms):.2f} "
        "of parse-only)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--recurring", type=int, default=200)
    parser.add_argument("--feed-bookings", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args(argv)
    asyncio.run(recreate(args.database_url))
    migrate_db(args.database_url)
    asyncio.run(run(args.database_url, args.events, args.recurring, args.feed_bookings, args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
