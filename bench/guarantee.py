"""Lost-slot recovery costs, beside baselines from the same run: `python -m bench.guarantee`.

* Time off over N bookings (each gets an offer holding 3 alternatives, in the same
  transaction)  vs  N plain ticket changes (change_booking) - per booking.
* Accepting an offer (the atomic move into a held time)  vs  a plain change - latency.

In-process service calls on its own database (booking_bench_guarantee, recreated) on the
shared local PostgreSQL; prints figures and ratios, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.bookings.changes import ChangeRequest, change_booking
from booking.bookings.checks import CustomerInput
from booking.bookings.placing import create_booking
from booking.guarantee.accept import accept_offer
from booking.guarantee.offers import add_time_off

ADMIN = Principal(kind="admin", id="bench")
DEFAULT_URL = "postgresql://postgres@127.0.0.1:54329/booking_bench_guarantee"


async def recreate(url: str) -> None:
    base, _, name = url.rpartition("/")
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def migrate(url: str) -> None:
    env = dict(os.environ, DATABASE_URL=url, PICCOLO_CONF="booking.piccolo_conf")
    subprocess.run(
        [sys.executable, "-m", "booking.cli", "migrate"], env=env, check=True, capture_output=True
    )


async def seed(staff_count: int) -> tuple[UUID, UUID, list[UUID]]:
    async with db.transaction() as conn:
        business: UUID = await conn.fetchval(
            "INSERT INTO business (slug, name, time_zone, min_notice_minutes, slot_step_minutes) "
            "VALUES ('bench-guarantee', 'Bench', 'Europe/Rome', 0, 15) RETURNING id"
        )
        service: UUID = await conn.fetchval(
            "INSERT INTO service (business_id, name, duration_minutes) VALUES ($1, 'Cut', 30) "
            "RETURNING id",
            business,
        )
        staff: list[UUID] = []
        for index in range(staff_count):
            staff_id = await conn.fetchval(
                "INSERT INTO staff (business_id, name) VALUES ($1, $2) RETURNING id",
                business,
                f"Staff {index}",
            )
            staff.append(staff_id)
            await conn.execute(
                "INSERT INTO service_staff (business_id, service_id, staff_id) VALUES ($1, $2, $3)",
                business,
                service,
                staff_id,
            )
            for weekday in range(7):
                await conn.execute(
                    "INSERT INTO working_hours (business_id, staff_id, weekday, opens_at, "
                    "closes_at) VALUES ($1, $2, $3, '08:00', '20:00')",
                    business,
                    staff_id,
                    weekday,
                )
    return business, service, staff


def day_slots(first: datetime, count: int) -> list[datetime]:
    """``count`` starts one hour apart between 09:00 and 18:00 local, day after day."""
    out: list[datetime] = []
    day = 0
    while len(out) < count:
        for hour in range(9, 18):
            if len(out) < count:
                out.append(first + timedelta(days=day, hours=hour - 9))
        day += 1
    return out


async def run(url: str, bookings: int) -> None:
    await db.start_pool(url, 2, 10)
    try:
        business, service, staff = await seed(4)
        from zoneinfo import ZoneInfo

        rome = ZoneInfo("Europe/Rome")
        first = datetime.combine(
            (datetime.now(rome) + timedelta(days=2)).date(), datetime.min.time(), tzinfo=rome
        ) + timedelta(hours=9)
        starts = day_slots(first, bookings)
        lost, baseline = [], []
        for index, start in enumerate(starts):
            customer = CustomerInput(f"C{index}", f"+3933310{index:05d}", "it")
            lost.append(
                await create_booking(ADMIN, business, service, start, customer, staff_id=staff[0])
            )
            other = CustomerInput(f"D{index}", f"+3933320{index:05d}", "it")
            baseline.append(
                await create_booking(ADMIN, business, service, start, other, staff_id=staff[1])
            )
        # Baseline: a plain change of each booking (same staff, 30 min later).
        change_ms = []
        for row in baseline:
            t0 = time.perf_counter()
            await change_booking(
                ADMIN, row["id"], ChangeRequest(starts_at=row["starts_at"] + timedelta(minutes=30))
            )
            change_ms.append((time.perf_counter() - t0) * 1000)
        # Time off over every booking of staff 0: one transaction, an offer per booking.
        t0 = time.perf_counter()
        outcome = await add_time_off(
            ADMIN,
            business,
            staff[0],
            starts[0] - timedelta(hours=1),
            starts[-1] + timedelta(hours=2),
        )
        time_off_ms = (time.perf_counter() - t0) * 1000
        holds = sum(len(o["options"]) for o in outcome.offers)
        accept_ms = []
        for offer in outcome.offers:
            t0 = time.perf_counter()
            await accept_offer(ADMIN, offer["id"], 1)
            accept_ms.append((time.perf_counter() - t0) * 1000)
    finally:
        await db.close_pool()
    per_booking = time_off_ms / bookings
    change_p50 = statistics.median(change_ms)
    accept_p50 = statistics.median(accept_ms)
    print(f"machine: {os.cpu_count()} cpus, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"bookings lost to time off: {bookings}; offers: {len(outcome.offers)}; held: {holds}")
    print(f"time off, whole transaction:       {time_off_ms:8.1f} ms")
    print(f"  per lost booking (offer + holds): {per_booking:8.2f} ms")
    print(f"baseline change_booking p50:        {change_p50:8.2f} ms")
    print(f"  ratio per-lost-booking / change:  {per_booking / change_p50:8.2f}x")
    print(
        f"accept offer p50 / p95:             {accept_p50:8.2f} / "
        f"{sorted(accept_ms)[int(0.95 * (len(accept_ms) - 1))]:.2f} ms"
    )
    print(f"  ratio accept / change (p50):      {accept_p50 / change_p50:8.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bookings", type=int, default=45)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args(argv)
    os.environ.setdefault("PICCOLO_CONF", "booking.piccolo_conf")
    asyncio.run(recreate(args.database_url))
    migrate(args.database_url)
    asyncio.run(run(args.database_url, args.bookings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
