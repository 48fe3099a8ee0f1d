"""Seats, classes and series: `python -m bench.seats [--quick]`.

* Seat bookings/s at 64 clients on ONE class through the API (every write updates the
  same session row: the hot row), beside the same run's baselines:
  - raw asyncpg writing the same rows (seat booking + its trigger's counter update,
    history, outbox) in one transaction, also on one class;
  - PostgreSQL's own limit for one hot row: `UPDATE ... SET n = n + 1` on one row;
  - the API with every client on its own class (no shared row).
  A class fills at 1,000 seats; writers then move on to the next one (still one hot
  row at a time).
* A 10-week series booking (one request, ten bookings) p50/p99, beside a single booking.

The API runs as `booking api` in its own process on its own database
(booking_bench_seats, recreated) of this checkout's local stack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import aiohttp
import asyncpg

from bench.seed import ROME, prepare_database
from bench.server import running_api
from bench.stats import Latency, ratio

DB_NAME = "booking_bench_seats"
CAPACITY = 1000
CLASSES = 60
CLIENTS = 64


@dataclass
class World:
    business_id: UUID
    service_id: UUID  # group service (the classes)
    cut_id: UUID  # 30-minute 1:1 service (the series)
    staff: list[UUID]
    classes: list[UUID]
    spread: list[UUID]  # one class per client for the uncontended figure
    customer_id: UUID
    key: str = ""


@dataclass(frozen=True)
class Rate:
    clients: int
    completed: int
    seconds: float
    latency: Latency

    @property
    def per_second(self) -> float:
        return self.completed / self.seconds


async def _seed(url: str) -> World:
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            business = await conn.fetchval(
                "INSERT INTO business (slug, name, time_zone, locale, change_cutoff_minutes, "
                "max_changes, min_notice_minutes, slot_step_minutes) VALUES "
                "('bench-seats', 'Bench seats', 'Europe/Rome', 'it', 0, 1000000, 0, 15) "
                "RETURNING id"
            )
            staff = [
                row["id"]
                for row in await conn.fetch(
                    "INSERT INTO staff (business_id, name) SELECT $1, 'Teacher ' || n "
                    "FROM generate_series(1, 80) n RETURNING id",
                    business,
                )
            ]
            await conn.execute(
                "INSERT INTO working_hours (business_id, staff_id, weekday, opens_at, "
                "closes_at) SELECT $1, s, d, '00:00', '23:30' FROM unnest($2::uuid[]) s, "
                "generate_series(0, 6) d",
                business,
                staff,
            )
            group = await conn.fetchval(
                "INSERT INTO service (business_id, name, duration_minutes, group_capacity) "
                "VALUES ($1, 'Yoga', 60, $2) RETURNING id",
                business,
                CAPACITY,
            )
            cut = await conn.fetchval(
                "INSERT INTO service (business_id, name, duration_minutes) "
                "VALUES ($1, 'Physio', 30) RETURNING id",
                business,
            )
            for service in (group, cut):
                await conn.execute(
                    "INSERT INTO service_staff (business_id, service_id, staff_id) "
                    "SELECT $1, $2, s FROM unnest($3::uuid[]) s",
                    business,
                    service,
                    staff,
                )
            first = datetime.now(ROME).replace(hour=8, minute=0, second=0, microsecond=0)

            async def session(teacher: UUID, starts: datetime) -> UUID:
                value: UUID = await conn.fetchval(
                    "INSERT INTO session (business_id, service_id, staff_id, starts_at, "
                    "ends_at, blocked_from, blocked_until, capacity) "
                    "VALUES ($1, $2, $3, $4::timestamptz, $4::timestamptz + interval '1 hour', "
                    "$4::timestamptz, $4::timestamptz + interval '1 hour', $5) RETURNING id",
                    business,
                    group,
                    teacher,
                    starts,
                    CAPACITY,
                )
                return value

            classes = [
                await session(staff[0], first + timedelta(days=2 + i // 12, hours=i % 12))
                for i in range(CLASSES * 2)
            ]
            spread = [
                await session(staff[1 + i], first + timedelta(days=2)) for i in range(CLIENTS)
            ]
            customer = await conn.fetchval(
                "INSERT INTO customer (business_id, name, phone) "
                "VALUES ($1, 'Raw', '+393330000001') RETURNING id",
                business,
            )
            await conn.execute("CREATE TABLE bench_hot_row (id int PRIMARY KEY, n bigint)")
            await conn.execute("INSERT INTO bench_hot_row VALUES (1, 0)")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return World(business, group, cut, staff, classes, spread, customer)


async def _issue_key(url: str, world: World) -> None:
    from booking import db
    from booking.access.service import create_api_key

    await db.start_pool(url, 1, 2)
    try:
        issued = await create_api_key(
            kind="staff",
            role="front_desk",
            name="bench",
            business_ids=[world.business_id],
            rate_limit_per_minute=0,
        )
        world.key = issued.key
    finally:
        await db.close_pool()


async def _drive(
    clients: int, duration: float, warmup: float, one: Callable[[int], Awaitable[bool]]
) -> Rate:
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration
    latencies: list[float] = []

    async def loop(client: int) -> None:
        while (began := time.perf_counter()) < stop_at:
            ok = await one(client)
            ended = time.perf_counter()
            if ok and began >= measure_from and ended <= stop_at:
                latencies.append(ended - began)

    await asyncio.gather(*(loop(client) for client in range(clients)))
    return Rate(clients, len(latencies), duration, Latency.of(latencies))


class ClassCursor:
    """The class being filled; a writer refused for a full class moves everyone on."""

    def __init__(self, classes: list[UUID]) -> None:
        self.classes = classes
        self.index = 0

    def current(self) -> tuple[int, UUID]:
        return self.index, self.classes[self.index]

    def full(self, index: int) -> None:
        if self.index == index:
            self.index += 1


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


async def api_seats(
    base: str, world: World, cursor: ClassCursor | None, duration: float, warmup: float
) -> Rate:
    """Seat bookings through the API; ``cursor`` None = each client on its own class."""
    phones = iter(range(10_000_000))
    async with aiohttp.ClientSession(
        base, headers=_headers(world.key), connector=aiohttp.TCPConnector(limit=CLIENTS)
    ) as http:

        async def one(client: int) -> bool:
            index, session = cursor.current() if cursor else (0, world.spread[client])
            body = {
                "seats": 1,
                "customer": {"name": "Bench", "phone": f"+39334{next(phones):07d}"},
            }
            async with http.post(
                f"/v1/businesses/{world.business_id}/sessions/{session}/bookings", json=body
            ) as response:
                await response.read()
                if response.status == 409 and cursor:
                    cursor.full(index)
                return response.status == 201

        return await _drive(CLIENTS, duration, warmup, one)


RAW_SEAT = """
    INSERT INTO booking (business_id, staff_id, service_id, session_id, seats, customer_id,
        status, channel, reference_code, starts_at, ends_at, blocked_from, blocked_until)
    SELECT business_id, staff_id, service_id, id, 1, $2, 'confirmed', 'front_desk', $3,
        starts_at, ends_at, blocked_from, blocked_until
    FROM session WHERE business_id = $1 AND id = $4
    RETURNING id, starts_at
"""


async def raw_seats(
    url: str, world: World, cursor: ClassCursor, duration: float, warmup: float
) -> Rate:
    """The same rows straight through asyncpg: the seat booking (its trigger updates the
    class's counter under the capacity CHECK), history and outbox, one transaction."""
    pool = await asyncpg.create_pool(url, min_size=CLIENTS, max_size=CLIENTS)
    try:

        async def one(client: int) -> bool:
            index, session = cursor.current()
            try:
                async with pool.acquire() as conn, conn.transaction():
                    row = await conn.fetchrow(
                        RAW_SEAT,
                        world.business_id,
                        world.customer_id,
                        "R" + secrets.token_hex(5).upper(),
                        session,
                    )
                    await conn.execute(
                        "INSERT INTO booking_history (booking_id, business_id, event, "
                        "to_status, actor_type, actor_id, channel) VALUES ($1, $2, "
                        "'booking.created', 'confirmed', 'staff', 'bench', 'front_desk')",
                        row["id"],
                        world.business_id,
                    )
                    await conn.execute(
                        "INSERT INTO outbox (business_id, topic, aggregate_id, payload) "
                        "VALUES ($1, 'booking.created', $2, $3::jsonb)",
                        world.business_id,
                        row["id"],
                        json.dumps({"event": "booking.created", "booking_id": str(row["id"])}),
                    )
            except asyncpg.CheckViolationError:
                cursor.full(index)
                return False
            return True

        return await _drive(CLIENTS, duration, warmup, one)
    finally:
        await pool.close()


async def hot_row(url: str, duration: float, warmup: float) -> Rate:
    """PostgreSQL's own limit for one hot row: 64 clients incrementing one counter."""
    pool = await asyncpg.create_pool(url, min_size=CLIENTS, max_size=CLIENTS)
    try:

        async def one(client: int) -> bool:
            async with pool.acquire() as conn:
                await conn.execute("UPDATE bench_hot_row SET n = n + 1 WHERE id = 1")
            return True

        return await _drive(CLIENTS, duration, warmup, one)
    finally:
        await pool.close()


async def series_latency(base: str, world: World, count: int) -> tuple[Latency, Latency]:
    """(10-week series, single booking) latencies, one request at a time, each on its own
    member of staff so nothing conflicts."""
    first = datetime.now(ROME).replace(hour=9, minute=0, second=0, microsecond=0)
    first += timedelta(days=3)
    series: list[float] = []
    single: list[float] = []
    async with aiohttp.ClientSession(base, headers=_headers(world.key)) as http:
        for i in range(count):
            teacher = world.staff[1 + i % 78]
            slot = first + timedelta(minutes=30 * (i // 78) + 600)
            customer = {"name": "Series", "phone": f"+39335{i:07d}"}
            body: dict[str, Any] = {
                "service_id": str(world.cut_id),
                "staff_id": str(teacher),
                "starts_at": slot.isoformat(),
                "rule": "FREQ=WEEKLY;COUNT=10",
                "mode": "all_or_nothing",
                "customer": customer,
            }
            began = time.perf_counter()
            async with http.post(f"/v1/businesses/{world.business_id}/series", json=body) as r:
                await r.read()
                assert r.status == 201, await r.text()
            series.append(time.perf_counter() - began)
            one = {
                "service_id": str(world.cut_id),
                "staff_id": str(teacher),
                "starts_at": (slot + timedelta(hours=2)).isoformat(),
                "customer": customer,
            }
            began = time.perf_counter()
            async with http.post(f"/v1/businesses/{world.business_id}/bookings", json=one) as r:
                await r.read()
                assert r.status == 201, await r.text()
            single.append(time.perf_counter() - began)
    return Latency.of(series), Latency.of(single)


async def _oversold(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        value: int = await conn.fetchval(
            "SELECT count(*) FROM session s WHERE s.seats_taken > s.capacity OR s.seats_taken "
            "<> (SELECT coalesce(sum(seats), 0) FROM booking b WHERE b.session_id = s.id "
            "AND booking_holds_time(b.status))"
        )
    finally:
        await conn.close()
    return value


async def main(quick: bool) -> None:
    duration, warmup, series_count = (4.0, 1.0, 30) if quick else (10.0, 2.0, 100)
    url, redis_url = prepare_database(DB_NAME)
    world = await _seed(url)
    await _issue_key(url, world)
    half = CLASSES
    raw = await raw_seats(url, world, ClassCursor(world.classes[:half]), duration, warmup)
    hot = await hot_row(url, duration, warmup)
    with running_api(url, redis_url) as base:
        api = await api_seats(base, world, ClassCursor(world.classes[half:]), duration, warmup)
        spread = await api_seats(base, world, None, duration, warmup)
        series, single = await series_latency(base, world, series_count)
    oversold = await _oversold(url)

    def line(name: str, rate: Rate) -> str:
        return (
            f"{name:<44} {rate.per_second:9.1f}/s  p50 {rate.latency.p50_ms:7.1f} ms  "
            f"p99 {rate.latency.p99_ms:7.1f} ms"
        )

    print(f"seats bench ({'quick' if quick else 'full'}), {CLIENTS} clients, {duration:.0f} s each")
    print(line("API, one class (hot row)", api))
    print(line("raw SQL, same rows, one class", raw))
    print(line("raw SQL, one-row counter UPDATE (PG limit)", hot))
    print(line("API, each client its own class", spread))
    print(f"  API/raw same rows      {ratio(api.per_second, raw.per_second):.2f}")
    print(f"  raw rows/hot-row limit {ratio(raw.per_second, hot.per_second):.2f}")
    print(f"  one class/spread (API) {ratio(api.per_second, spread.per_second):.2f}")
    print(
        f"10-week series (one request, 10 bookings): p50 {series.p50_ms:.1f} ms "
        f"p99 {series.p99_ms:.1f} ms over {series.count}; single booking p50 "
        f"{single.p50_ms:.1f} ms p99 {single.p99_ms:.1f} ms; p99 ratio "
        f"{ratio(series.p99_ms, single.p99_ms):.2f}"
    )
    print(f"sessions oversold or miscounted after the run: {oversold}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
