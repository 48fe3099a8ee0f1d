"""The benchmarks themselves: each returns figures, never asserts on time.

HTTP load comes from aiohttp clients on 127.0.0.1 (one keep-alive connection
per concurrent client); the raw baseline talks asyncpg straight to the same
database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
from argparse import Namespace
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import aiohttp
import asyncpg

from bench import notifications
from bench.seed import ROME, WRITE_SLOTS_PER_DAY, BenchWorld, Tenant
from bench.stats import Latency

API_STAFF = 64  # writes tenant: staff 0-63 for API clients, 64-127 for raw clients
WRITE_DAY_OFFSET = 40  # throughput bookings start after the searched month
CONTENTION_DAY_OFFSET = 30  # the day after the searched month


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


@dataclass
class SlotCursor:
    """Hands each member of staff of the writes tenant its next free 30-minute slot."""

    first_day: date
    used: dict[int, int] = field(default_factory=dict)
    phones: int = 0

    def next_start(self, staff_index: int) -> datetime:
        while True:
            index = self.used.get(staff_index, 0)
            self.used[staff_index] = index + 1
            offset = WRITE_DAY_OFFSET + index // WRITE_SLOTS_PER_DAY
            minutes = (index % WRITE_SLOTS_PER_DAY) * 30
            moment = datetime.combine(
                self.first_day + timedelta(days=offset),
                wall_time(minutes // 60, minutes % 60),
                tzinfo=ROME,
            )
            # Skip wall-clock times that do not exist (the spring-forward gap).
            if moment.astimezone(UTC).astimezone(ROME).replace(tzinfo=None) == moment.replace(
                tzinfo=None
            ):
                return moment

    def next_phone(self) -> str:
        self.phones += 1
        return f"+39334{self.phones:07d}"


@dataclass(frozen=True, slots=True)
class Throughput:
    clients: int
    completed: int
    seconds: float
    errors: int
    latency: Latency

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0


async def _drive(
    clients: int,
    duration: float,
    warmup: float,
    one: Callable[[int], Awaitable[bool]],
) -> Throughput:
    """Each client calls ``one(client)`` back to back; count what ends after the warm-up."""
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + duration
    latencies: list[float] = []
    completed = 0
    errors = 0

    async def loop(client: int) -> None:
        nonlocal completed, errors
        while True:
            began = time.perf_counter()
            if began >= stop_at:
                return
            ok = await one(client)
            ended = time.perf_counter()
            if began >= measure_from and ended <= stop_at:
                if ok:
                    completed += 1
                    latencies.append(ended - began)
                else:
                    errors += 1

    await asyncio.gather(*(loop(client) for client in range(clients)))
    return Throughput(clients, completed, duration, errors, Latency.of(latencies))


@dataclass(frozen=True, slots=True)
class CabinWrites:
    """The writes tenant's staff + cabin treatment: one cabin per member of staff, so
    each client books its own staff member and its own cabin (no contention)."""

    service_id: UUID
    cabins: list[UUID]  # cabins[i] goes with the writes tenant's staff[i]


async def cabin_writes(database_url: str, world: BenchWorld) -> CabinWrites:
    """A 30-minute treatment of the writes tenant that needs a cabin (and any of its
    staff), with as many cabins as staff, set up with SQL as the seed is."""
    tenant = world.writes
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            cabins = [
                row["id"]
                for row in await conn.fetch(
                    "INSERT INTO resource (business_id, kind, name, group_name) "
                    "SELECT $1, 'room', 'Cabin ' || lpad(n::text, 3, '0'), 'cabin' "
                    "FROM generate_series(1, $2) n ORDER BY n RETURNING id",
                    tenant.business_id,
                    len(tenant.staff),
                )
            ]
            service_id: UUID = await conn.fetchval(
                "INSERT INTO service (business_id, name, duration_minutes, resource_group) "
                "VALUES ($1, 'Cabin treatment', 30, 'cabin') RETURNING id",
                tenant.business_id,
            )
            await conn.execute(
                "INSERT INTO service_staff (business_id, service_id, staff_id) "
                "SELECT $1, $2, s FROM unnest($3::uuid[]) s",
                tenant.business_id,
                service_id,
                tenant.staff,
            )
    finally:
        await conn.close()
    return CabinWrites(service_id, cabins)


async def api_bookings(
    base: str,
    world: BenchWorld,
    cursor: SlotCursor,
    clients: int,
    duration: float,
    warmup: float,
    cabins: CabinWrites | None = None,
) -> Throughput:
    """Non-conflicting bookings through POST /v1/businesses/{id}/bookings (with
    ``cabins``: of the staff + cabin treatment, each client with its own cabin)."""
    tenant = world.writes
    url = f"{base}/v1/businesses/{tenant.business_id}/bookings"
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=_headers(tenant.key)) as http:

        async def one(client: int) -> bool:
            body = {
                "service_id": str(cabins.service_id if cabins else tenant.service_id),
                "staff_id": str(tenant.staff[client]),
                "starts_at": cursor.next_start(client).isoformat(),
                "customer": {"name": "Bench Customer", "phone": cursor.next_phone()},
            }
            if cabins:
                body["resource_id"] = str(cabins.cabins[client])
            async with http.post(url, data=json.dumps(body)) as response:
                await response.read()
                return response.status == 201

        return await _drive(clients, duration, warmup, one)


RAW_INSERT = """
INSERT INTO booking (business_id, staff_id, service_id, customer_id, status, channel,
    reference_code, starts_at, ends_at, blocked_from, blocked_until, created_by, resource_id)
VALUES ($1, $2, $3, $4, 'confirmed', 'front_desk', $5, $6, $7, $6, $7, 'bench', $8)
RETURNING id
"""
RAW_HISTORY = (
    "INSERT INTO booking_history (booking_id, business_id, event, to_status, actor_type, "
    "actor_id, channel) VALUES ($1, $2, 'booking.created', 'confirmed', 'staff', 'bench', "
    "'front_desk')"
)
RAW_OUTBOX = (
    "INSERT INTO outbox (business_id, topic, aggregate_id, payload) "
    "VALUES ($1, 'booking.created', $2, $3::jsonb)"
)


async def raw_bookings(
    database_url: str,
    world: BenchWorld,
    cursor: SlotCursor,
    clients: int,
    duration: float,
    warmup: float,
    cabins: CabinWrites | None = None,
) -> Throughput:
    """The database's own limit: the same rows the API writes - the booking row, its
    staff allocation (and with ``cabins`` its cabin allocation: written by the same
    trigger, allocation_no_overlap checked), its history event and its outbox row - in
    one transaction, straight through asyncpg."""
    tenant = world.writes
    pool = await asyncpg.create_pool(database_url, min_size=clients, max_size=clients)
    try:

        async def one(client: int) -> bool:
            staff_index = API_STAFF + client
            starts_at = cursor.next_start(staff_index)
            ends_at = starts_at + timedelta(minutes=30)
            async with pool.acquire() as conn, conn.transaction():
                booking_id = await conn.fetchval(
                    RAW_INSERT,
                    tenant.business_id,
                    tenant.staff[staff_index],
                    cabins.service_id if cabins else tenant.service_id,
                    tenant.customers[0],
                    "R" + secrets.token_hex(5).upper(),
                    starts_at,
                    ends_at,
                    cabins.cabins[staff_index] if cabins else None,
                )
                payload = {
                    "event": "booking.created",
                    "booking_id": str(booking_id),
                    "version": 1,
                    "status": "confirmed",
                    "starts_at": starts_at.isoformat(),
                }
                await conn.execute(RAW_HISTORY, booking_id, tenant.business_id)
                await conn.execute(RAW_OUTBOX, tenant.business_id, booking_id, json.dumps(payload))
            return True

        return await _drive(clients, duration, warmup, one)
    finally:
        await pool.close()


@dataclass(frozen=True, slots=True)
class Contention:
    clients: int
    slots: int
    winners: int
    losers_409_with_alternatives: int
    other: dict[int, int]
    rows_in_database: int
    winner_latency: Latency
    loser_latency: Latency
    overlapping_allocations: int = 0
    # The same clients GETting the business all at once just before the race (auth +
    # one SELECT each): what answering that many requests at once costs this server.
    burst_floor: Latency | None = None

    @property
    def exact(self) -> bool:
        return (
            self.winners == self.slots == self.rows_in_database
            and self.losers_409_with_alternatives == self.clients - self.slots
            and self.overlapping_allocations == 0
        )


async def contention(
    base: str,
    database_url: str,
    world: BenchWorld,
    clients: int = 500,
    slots: int = 20,
    *,
    service_id: UUID | None = None,
    any_staff: bool = False,
    day_offset: int = 0,
) -> Contention:
    """``clients`` concurrent bookings aimed at ``slots`` (staff, time) pairs.

    The race runs on the searched business (20 staff) the day after its busy
    month, so each loser's alternatives are searched across that month. With
    ``service_id`` of a cabin service and ``any_staff``, every client asks for any
    member of staff and any cabin at one time: ``slots`` is the number of cabins.
    """
    tenant = world.search
    day = world.first_day + timedelta(days=CONTENTION_DAY_OFFSET + day_offset)
    starts_at = datetime.combine(day, wall_time(12, 0), tzinfo=ROME)
    url = f"{base}/v1/businesses/{tenant.business_id}/bookings"
    go = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=clients)
    results: list[tuple[int, float, dict[str, Any]]] = []
    async with aiohttp.ClientSession(
        connector=connector,
        headers=_headers(tenant.key),
        timeout=aiohttp.ClientTimeout(total=120),
    ) as http:
        # Open every connection first so the race is between requests, not TCP handshakes.
        async def connect() -> None:
            async with http.get(f"{base}/health") as response:
                await response.read()

        await asyncio.gather(*(connect() for _ in range(clients)))
        burst_floor = await _burst(http, f"{base}/v1/businesses/{tenant.business_id}", clients)

        async def one(client: int) -> None:
            body: dict[str, Any] = {
                "service_id": str(service_id or tenant.service_id),
                "starts_at": starts_at.isoformat(),
                "customer": {"name": "Racer", "phone": f"+39335{client:07d}"},
            }
            if not any_staff:
                body["staff_id"] = str(tenant.staff[client % slots])
            payload = json.dumps(body)
            await go.wait()
            began = time.perf_counter()
            async with http.post(url, data=payload) as response:
                raw = await response.read()
                results.append((response.status, time.perf_counter() - began, json.loads(raw)))

        tasks = [asyncio.create_task(one(client)) for client in range(clients)]
        await asyncio.sleep(0.2)
        go.set()
        await asyncio.gather(*tasks)
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetchval(
            "SELECT count(*) FROM booking WHERE business_id = $1 AND starts_at = $2 "
            "AND status IN ('held', 'pending', 'confirmed', 'checked_in')",
            tenant.business_id,
            starts_at,
        )
        overlapping = await conn.fetchval(
            "SELECT count(*) FROM allocation a JOIN allocation b ON a.business_id = b.business_id"
            " AND a.resource_id = b.resource_id AND a.id < b.id AND a.during && b.during"
            " WHERE a.active AND b.active AND a.business_id = $1",
            tenant.business_id,
        )
    finally:
        await conn.close()
    winners = [lat for status, lat, _ in results if status == 201]
    losers = [
        lat
        for status, lat, body in results
        if status == 409
        and body.get("type") == "/problems/slot-taken"
        and len(body.get("alternatives", [])) > 0
    ]
    other: dict[int, int] = {}
    for status, _, body in results:
        if status not in (201, 409) or (status == 409 and not body.get("alternatives")):
            other[status] = other.get(status, 0) + 1
    return Contention(
        clients=clients,
        slots=slots,
        winners=len(winners),
        losers_409_with_alternatives=len(losers),
        other=other,
        rows_in_database=int(rows),
        overlapping_allocations=int(overlapping),
        winner_latency=Latency.of(winners),
        loser_latency=Latency.of(losers),
        burst_floor=burst_floor,
    )


async def _burst(http: aiohttp.ClientSession, url: str, clients: int) -> Latency:
    """``clients`` GETs of ``url`` released at once; their latencies."""
    go = asyncio.Event()
    latencies: list[float] = []

    async def one() -> None:
        await go.wait()
        began = time.perf_counter()
        async with http.get(url) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {url} -> {response.status}")
        latencies.append(time.perf_counter() - began)

    tasks = [asyncio.create_task(one()) for _ in range(clients)]
    await asyncio.sleep(0.2)
    go.set()
    await asyncio.gather(*tasks)
    return Latency.of(latencies)


async def _sequential(
    http: aiohttp.ClientSession, urls: list[str], expect: int = 200
) -> tuple[Latency, int]:
    latencies: list[float] = []
    size = 0
    for url in urls:
        began = time.perf_counter()
        async with http.get(url) as response:
            raw = await response.read()
            if response.status != expect:
                raise RuntimeError(f"GET {url} -> {response.status}: {raw[:300]!r}")
        latencies.append(time.perf_counter() - began)
        size = max(size, len(raw))
    return Latency.of(latencies), size


async def http_floor(base: str, tenant: Tenant, requests: int) -> Latency:
    """The cheapest authenticated call: GET the business (auth + one primary-key SELECT)."""
    async with aiohttp.ClientSession(headers=_headers(tenant.key)) as http:
        url = f"{base}/v1/businesses/{tenant.business_id}"
        await _sequential(http, [url] * 20)  # warm
        latency, _ = await _sequential(http, [url] * requests)
    return latency


SEARCH_SPANS = {"day": 1, "week": 7, "month": 30}


def _search_urls(
    base: str, world: BenchWorld, days: int, requests: int, service_id: UUID | None = None
) -> list[str]:
    tenant = world.search
    urls = []
    for index in range(requests):
        offset = index % (31 - days)
        start = datetime.combine(
            world.first_day + timedelta(days=offset), wall_time(0), tzinfo=ROME
        )
        query = urlencode(
            {
                "service_id": str(service_id or tenant.service_id),
                "from": start.isoformat(),
                "to": (start + timedelta(days=days)).isoformat(),
            }
        )
        urls.append(f"{base}/v1/businesses/{tenant.business_id}/availability?{query}")
    return urls


async def availability(
    base: str, world: BenchWorld, requests: int, service_id: UUID | None = None
) -> dict[str, tuple[Latency, int]]:
    """p50/p99 of one client searching a day, a week and the month (sequential), and,
    for the staff-only service, one member of staff's day (``staff day``)."""
    found: dict[str, tuple[Latency, int]] = {}
    async with aiohttp.ClientSession(headers=_headers(world.search.key)) as http:
        for name, days in SEARCH_SPANS.items():
            await _sequential(http, _search_urls(base, world, days, 5, service_id))  # warm
            found[name] = await _sequential(
                http, _search_urls(base, world, days, requests, service_id)
            )
        if service_id is None:
            staff = f"&staff_id={world.search.staff[0]}"
            urls = [url + staff for url in _search_urls(base, world, 1, requests + 5)]
            await _sequential(http, urls[:5])  # warm
            found["staff day"] = await _sequential(http, urls[5:])
    return found


async def availability_sql(database_url: str, world: BenchWorld, requests: int) -> Latency:
    """The database's part of a month search: the same calendar queries via asyncpg."""
    from booking.availability.service import load_calendars

    conn = await asyncpg.connect(database_url)
    try:
        start = datetime.combine(world.first_day, wall_time(0), tzinfo=ROME)
        end = start + timedelta(days=30)
        latencies = []
        for index in range(requests + 5):
            began = time.perf_counter()
            await load_calendars(conn, world.search.staff, start, end)
            if index >= 5:
                latencies.append(time.perf_counter() - began)
    finally:
        await conn.close()
    return Latency.of(latencies)


@dataclass(frozen=True, slots=True)
class CounterChange:
    lookup: Latency
    change: Latency
    total: Latency
    failures: int


async def counter_change(
    base: str, database_url: str, world: BenchWorld, requests: int
) -> CounterChange:
    """Rebook by reference code: GET front-desk/rebooking/{code}, then PATCH the booking."""
    tenant = world.search
    conn = await asyncpg.connect(database_url)
    try:
        codes = [
            row["reference_code"]
            for row in await conn.fetch(
                "SELECT reference_code FROM booking WHERE business_id = $1 "
                "AND status = 'confirmed' AND starts_at > now() + interval '2 days' "
                "ORDER BY md5(reference_code) LIMIT $2",
                tenant.business_id,
                requests + 5,
            )
        ]
    finally:
        await conn.close()
    lookups: list[float] = []
    changes: list[float] = []
    totals: list[float] = []
    failures = 0
    async with aiohttp.ClientSession(headers=_headers(tenant.key)) as http:
        for index, code in enumerate(codes):
            began = time.perf_counter()
            async with http.get(
                f"{base}/v1/businesses/{tenant.business_id}/front-desk/rebooking/{code}"
            ) as response:
                options = json.loads(await response.read())
            looked = time.perf_counter()
            if response.status != 200 or not options["alternatives"]:
                failures += 1
                continue
            booking = options["booking"]
            choice = options["alternatives"][0]
            async with http.patch(
                f"{base}/v1/bookings/{booking['id']}",
                data=json.dumps({"starts_at": choice["starts_at"]}),
                headers={"If-Match": f'"{booking["version"]}"'},
            ) as response:
                await response.read()
            ended = time.perf_counter()
            if response.status != 200:
                failures += 1
                continue
            if index >= 5:  # the first few warm the server
                lookups.append(looked - began)
                changes.append(ended - looked)
                totals.append(ended - began)
    return CounterChange(Latency.of(lookups), Latency.of(changes), Latency.of(totals), failures)


# --------------------------------------------------------------------------- 5 notifications


@dataclass(frozen=True)
class NotificationPipeline:
    """bench/notifications.py's figures: the SMS pipeline beside raw arq, same run."""

    bookings: int
    accepted: int  # SMS the fake Twilio accepted (burst + paced)
    paced_rate: float  # bookings per second in the paced round
    sms_per_second: float  # burst: first commit to last send
    raw_jobs_per_second: float  # no-op arq jobs, same worker settings
    backlog_per_second: float  # as many rows committed with no worker, then drained
    burst_lag: Latency  # commit -> send
    paced_lag: Latency
    raw_burst_lag: Latency  # enqueue -> execute of the no-op job
    raw_paced_lag: Latency


NOTIFY_DB = "booking_bench_notify"


async def notification_pipeline(bookings: int, paced: int, rate: float) -> NotificationPipeline:
    """Bookings -> SMS accepted by the fake Twilio, worker and fake as their own processes.

    Runs bench.notifications.pipeline (its own database and Redis db on the local
    stack; it opens and closes the global pool, so call it with none open). Its
    report goes to stderr, with the other progress lines.
    """
    from booking import db, localstack

    # The pipeline migrates through Piccolo's engine, which still names the database
    # of the benchmarks before it: point it at the pipeline's own (bench/notifications.py).
    pg_port, redis_port = localstack.env_ports()  # this checkout's stack
    stack = localstack.ensure_stack(pg_port=pg_port, redis_port=redis_port)
    db.engine().config = {"dsn": stack.database_url(NOTIFY_DB)}
    saved = dict(os.environ)  # the pipeline points DATABASE_URL/REDIS_URL at its own
    try:
        with contextlib.redirect_stdout(sys.stderr):
            figures = await notifications.pipeline(
                Namespace(bookings=bookings, paced=paced, rate=rate, backlog=bookings)
            )
    finally:
        os.environ.clear()
        os.environ.update(saved)

    def lag(values: dict[str, float]) -> Latency:
        return Latency(int(values.get("count", 0)), values["p50"], values["p99"])

    burst, paced_figures = figures["burst"], figures["paced"]
    raw, raw_paced = figures["raw"], figures["raw_paced"]
    return NotificationPipeline(
        bookings=bookings,
        accepted=figures["accepted"],
        paced_rate=rate,
        sms_per_second=burst["rate"],
        raw_jobs_per_second=raw["rate"],
        backlog_per_second=figures["backlog"]["rate"],
        burst_lag=lag(burst),
        paced_lag=lag(paced_figures),
        raw_burst_lag=Latency(bookings, raw["p50"], raw["p99"]),
        raw_paced_lag=Latency(paced, raw_paced["p50"], raw_paced["p99"]),
    )


async def cabin_service(database_url: str, world: BenchWorld, cabins: int = 5) -> UUID:
    """A 30-minute treatment of the searched business that needs one of ``cabins`` cabins
    (and any of its 20 staff), set up with SQL as the seed is. Each cabin is blocked
    two hours each morning and afternoon of the searched month (staggered by cabin),
    so a search has cabin time to check against the staff's 10,000 bookings."""
    tenant = world.search
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            ids = [
                await conn.fetchval(
                    "INSERT INTO resource (business_id, kind, name, group_name) "
                    "VALUES ($1, 'room', $2, 'cabin') RETURNING id",
                    tenant.business_id,
                    f"Cabin {n}",
                )
                for n in range(1, cabins + 1)
            ]
            await conn.execute(
                """
                INSERT INTO allocation (business_id, resource_id, kind, during, active)
                SELECT $1, c.id, 'block', tstzrange(s, s + interval '2 hours', '[)'), true
                FROM unnest($2::uuid[]) WITH ORDINALITY AS c(id, n),
                     generate_series(0, 29) AS d,
                     unnest(ARRAY[time '09:00', time '14:00']) AS w(t),
                     LATERAL (SELECT (($3::date + d) + w.t + (c.n - 1) * interval '30 minutes')
                              AT TIME ZONE 'Europe/Rome' AS s) AS x
                """,
                tenant.business_id,
                ids,
                world.first_day,
            )
            service_id: UUID = await conn.fetchval(
                "INSERT INTO service (business_id, name, duration_minutes, resource_group) "
                "VALUES ($1, 'Cabin treatment', 30, 'cabin') RETURNING id",
                tenant.business_id,
            )
            await conn.executemany(
                "INSERT INTO service_staff (business_id, service_id, staff_id) VALUES ($1, $2, $3)",
                [(tenant.business_id, service_id, staff_id) for staff_id in tenant.staff],
            )
    finally:
        await conn.close()
    return service_id
