"""Bench data: a dedicated database, tenants, staff, services, keys and N bookings.

Bookings are written with set-based SQL (``generate_series``) so 100,000 rows
take seconds; every row is a real active booking that the exclusion constraint
checks on the way in.

Layout (see bench/RESULTS.md):
* ``search``: 20 staff working 09:00-18:00 every day, a 30-minute service, and
  ``min(N, 10,000)`` confirmed bookings spread evenly over the 30 days from
  tomorrow (capacity 10,800, so 10,000 is a 93 % full month).
* ``others``: bookings beyond 10,000 belong to other tenants of the same shape
  in the same month, so the table and its indexes grow to N rows.
* ``writes``: the throughput business: 128 staff working 00:00-23:30, a
  30-minute service, no bookings; API clients use staff 0-63, raw asyncpg
  clients staff 64-127, each client its own member of staff, so no write
  conflicts with another.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from booking import localstack
from booking.access.service import clear_cache, create_api_key

ROME = ZoneInfo("Europe/Rome")
SEARCH_STAFF = 20
MONTH_DAYS = 30
SLOTS_PER_DAY = 18  # 09:00-18:00 in 30-minute slots
MONTH_CAPACITY = SEARCH_STAFF * MONTH_DAYS * SLOTS_PER_DAY
SEARCH_MONTH_BOOKINGS = 10_000
WRITE_STAFF = 128
WRITE_SLOTS_PER_DAY = 47  # 00:00-23:30
DEFAULT_DB = "booking_bench"


@dataclass
class Tenant:
    business_id: UUID
    service_id: UUID
    staff: list[UUID]
    key: str = ""
    customers: list[UUID] = field(default_factory=list)


@dataclass
class BenchWorld:
    search: Tenant
    writes: Tenant
    first_day: date  # the first day of the searched month (tomorrow, Rome)
    bookings: int  # active bookings in the table after seeding


def prepare_database(dbname: str = DEFAULT_DB) -> tuple[str, str]:
    """(database URL, Redis URL): a fresh, migrated database on the shared local stack."""
    pg_port, redis_port = localstack.env_ports()  # this checkout's stack
    stack = localstack.ensure_stack(pg_port=pg_port, redis_port=redis_port)
    url = localstack.ensure_database(stack, dbname, recreate=True)
    migrate(url)
    return url, stack.redis_url(6)


def migrate(url: str) -> None:
    """`booking migrate` on ``url`` as its own process: this process's settings are read
    once (cached) and would name another database."""
    env = {"DATABASE_URL": url, "PICCOLO_CONF": "booking.piccolo_conf"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "booking"), "migrate"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError("migrate failed:\n" + result.stdout + result.stderr)


async def _tenant(
    conn: asyncpg.Connection,
    slug: str,
    staff_count: int,
    opens: str,
    closes: str,
    *,
    customers: int,
) -> Tenant:
    business_id: UUID = await conn.fetchval(
        """
        INSERT INTO business (slug, name, time_zone, locale, change_cutoff_minutes, max_changes,
                              min_notice_minutes, slot_step_minutes)
        VALUES ($1, $1, 'Europe/Rome', 'it', 0, 1000000, 0, 15) RETURNING id
        """,
        slug,
    )
    staff: list[UUID] = [
        row["id"]
        for row in await conn.fetch(
            "INSERT INTO staff (business_id, name) "
            "SELECT $1, 'Staff ' || lpad(n::text, 3, '0') FROM generate_series(1, $2) n "
            "RETURNING id",
            business_id,
            staff_count,
        )
    ]
    staff.sort(key=str)
    await conn.execute(
        "INSERT INTO working_hours (business_id, staff_id, weekday, opens_at, closes_at) "
        "SELECT $1, s, d, $3::time, $4::time FROM unnest($2::uuid[]) s, generate_series(0, 6) d",
        business_id,
        staff,
        datetime.strptime(opens, "%H:%M").time(),
        datetime.strptime(closes, "%H:%M").time(),
    )
    service_id: UUID = await conn.fetchval(
        "INSERT INTO service (business_id, name, duration_minutes) VALUES ($1, 'Cut', 30) "
        "RETURNING id",
        business_id,
    )
    await conn.execute(
        "INSERT INTO service_staff (business_id, service_id, staff_id) "
        "SELECT $3, $1, s FROM unnest($2::uuid[]) s",
        service_id,
        staff,
        business_id,
    )
    customer_ids = [
        row["id"]
        for row in await conn.fetch(
            "INSERT INTO customer (business_id, name, phone) "
            "SELECT $1, 'Customer ' || n, '+39333' || lpad(n::text, 7, '0') "
            "FROM generate_series(1, $2) n RETURNING id",
            business_id,
            customers,
        )
    ]
    return Tenant(business_id, service_id, staff, customers=customer_ids)


async def fill_month(
    conn: asyncpg.Connection, tenant: Tenant, first_day: date, count: int, code_prefix: str
) -> int:
    """``count`` confirmed bookings spread evenly over a 30-day month of the tenant."""
    count = min(count, MONTH_CAPACITY)
    if count <= 0:
        return 0
    # r -> r * 7919 mod capacity is a bijection (7919 is prime and does not
    # divide 10,800), so "< count" keeps exactly ``count`` slots, spread evenly.
    result: str = await conn.execute(
        """
        INSERT INTO booking (business_id, staff_id, service_id, customer_id, status, channel,
            reference_code, starts_at, ends_at, blocked_from, blocked_until, created_by)
        SELECT $1, ($2::uuid[])[s + 1], $3, ($4::uuid[])[1 + r % cardinality($4::uuid[])],
               'confirmed', 'web', $5 || lpad(r::text, 6, '0'), t, t + interval '30 minutes',
               t, t + interval '30 minutes', 'bench'
        FROM generate_series(0, $7 - 1) d, generate_series(0, $8 - 1) s,
             generate_series(0, $9 - 1) k,
             LATERAL (SELECT (d * $8 + s) * $9 + k AS r) x,
             LATERAL (SELECT (($6::date + d) + time '09:00' + k * interval '30 minutes')
                             AT TIME ZONE 'Europe/Rome' AS t) y
        WHERE (r * 7919) % $10 < $11
        """,
        tenant.business_id,
        tenant.staff,
        tenant.service_id,
        tenant.customers,
        code_prefix,
        first_day,
        MONTH_DAYS,
        SEARCH_STAFF,
        SLOTS_PER_DAY,
        MONTH_CAPACITY,
        count,
    )
    return int(result.split()[-1])


async def seed(database_url: str, bookings: int) -> BenchWorld:
    """Empty the bench database and lay out the tenants with ``bookings`` bookings."""
    conn = await asyncpg.connect(database_url)
    try:
        tables = [
            row["tablename"]
            for row in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'migration'"
            )
        ]
        await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        first_day = datetime.now(ROME).date() + timedelta(days=1)
        async with conn.transaction():
            search = await _tenant(
                conn, "bench-search", SEARCH_STAFF, "09:00", "18:00", customers=500
            )
            writes = await _tenant(conn, "bench-writes", WRITE_STAFF, "00:00", "23:30", customers=1)
            total = await fill_month(
                conn, search, first_day, min(bookings, SEARCH_MONTH_BOOKINGS), "S"
            )
            other = 0
            while total < bookings:
                other += 1
                tenant = await _tenant(
                    conn, f"bench-other-{other}", SEARCH_STAFF, "09:00", "18:00", customers=50
                )
                total += await fill_month(
                    conn,
                    tenant,
                    first_day,
                    min(bookings - total, SEARCH_MONTH_BOOKINGS),
                    f"O{other:03d}",
                )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    clear_cache()
    return BenchWorld(search=search, writes=writes, first_day=first_day, bookings=total)


async def issue_keys(world: BenchWorld) -> None:
    """An unlimited front-desk key for each bench business (needs booking.db's pool)."""
    for tenant in (world.search, world.writes):
        # Unlimited (rate_limit_per_minute=0): the bench measures capacity, not the
        # per-key limit (1,200 a minute by default).
        issued = await create_api_key(
            kind="staff",
            role="front_desk",
            name="bench",
            business_ids=[tenant.business_id],
            rate_limit_per_minute=0,
        )
        tenant.key = issued.key


async def seeded_database(dbname: str, bookings: int) -> tuple[str, str, BenchWorld]:
    """A fresh bench database with ``bookings`` laid out and keys issued:
    (database URL, Redis URL, world)."""
    from booking import db

    url, redis_url = prepare_database(dbname)
    await db.start_pool(url, 1, 4)
    try:
        world = await seed(url, bookings)
        await issue_keys(world)
    finally:
        await db.close_pool()
    return url, redis_url, world
