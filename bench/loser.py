"""What one race loser costs, in this process (no HTTP): `python -m bench.loser`.

Seeds the searched business as `bench.run` does (10,000 bookings), adds the cabin
service (`scenarios.cabin_service`: 20 staff, 5 cabins), then fills one time of each
race the day after the searched month: all 5 cabins (any staff / any cabin) and all 20
staff (staff-only). Then, for a loser of each race:

* `booking_place` alone, as `store.insert_active` calls it (asyncpg, round trip
  included), beside `SELECT 1` on the same connection;
* `placing.create_booking` of a loser: CPU of this process and wall time per call, the
  alternatives search replaced by one shared answer, as the losers of a race share one;
* one alternatives search (`availability.service.alternatives_near`).

The figures are comparable only within one run (the machine's load moves them all).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from datetime import time as wall_time
from functools import partial
from typing import Any
from uuid import UUID

from bench import scenarios
from bench.seed import ROME, seeded_database


async def _per_call(run: Callable[[int], Awaitable[Any]], calls: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per call of ``run(i)``, after a few untimed calls."""
    for i in range(10):
        await run(-1 - i)
    cpu, began = time.process_time(), time.perf_counter()
    for i in range(calls):
        await run(i)
    return (
        1e3 * (time.process_time() - cpu) / calls,
        1e3 * (time.perf_counter() - began) / calls,
    )


async def _place(
    conn: Any,
    context: Any,
    staff_ids: list[UUID],
    resource_ids: list[UUID],
    starts: datetime,
    desk: Any,
    i: int,
) -> None:
    from booking.bookings import store

    row = await store.insert_active(
        conn, context, staff_ids, starts, status="confirmed", channel="web", principal=desk,
        event="booking.created", customer=("Racer", f"+39339{abs(i):07d}", "it"),
        resource_ids=resource_ids,
    )  # fmt: skip
    assert row is None, "a loser won"


async def _search(conn: Any, context: Any, starts: datetime, i: int) -> None:
    from booking.availability.service import alternatives_near

    await alternatives_near(conn, context, starts, apply_notice=False)


async def measure(dbname: str, calls: int) -> None:
    from booking import db
    from booking.access.principal import Principal
    from booking.availability.context import load_service_context
    from booking.bookings import placing
    from booking.bookings.checks import CustomerInput
    from booking.errors import SlotTaken

    url, _, world = await seeded_database(dbname, 10_000)
    cabin_service = await scenarios.cabin_service(url, world)
    tenant = world.search
    day = world.first_day + timedelta(days=scenarios.CONTENTION_DAY_OFFSET)
    staff_time = datetime.combine(day, wall_time(12, 0), tzinfo=ROME)
    cabin_time = staff_time + timedelta(days=1)
    desk = Principal(kind="admin", id="bench")
    races: dict[str, tuple[UUID, datetime, UUID | None]] = {
        "cabin": (cabin_service, cabin_time, None),
        "staff": (tenant.service_id, staff_time, tenant.staff[0]),
    }
    await db.start_pool(url, 1, 4)
    try:

        async def book(race: str, i: int, staff: UUID | None) -> dict[str, Any]:
            service, starts, _ = races[race]
            phone = f"+39338{abs(i):07d}"
            return await placing.create_booking(
                desk, tenant.business_id, service, starts, CustomerInput("Racer", phone),
                staff_id=staff,
            )  # fmt: skip

        async def lose(race: str, i: int) -> None:
            try:
                await book(race, i, races[race][2])
            except SlotTaken:
                return
            raise AssertionError("a loser won")

        for i in range(5):  # every cabin taken
            await book("cabin", 9_000_000 + i, None)
        for i, staff in enumerate(tenant.staff):  # every member of staff taken
            await book("staff", 9_100_000 + i, staff)

        print(f"{calls} calls each, load {os.getloadavg()[0]:.2f}")
        async with db.connection() as conn:
            resources = [
                row["id"]
                for row in await conn.fetch(
                    "SELECT id FROM resource WHERE business_id = $1 AND group_name = 'cabin' "
                    "ORDER BY name, id",
                    tenant.business_id,
                )
            ]
            one = await _per_call(lambda i: conn.fetchval("SELECT 1"), calls)
            print(f"  SELECT 1 (round trip)                 wall {one[1]:.3f} ms")
            for race, staff_ids, resource_ids in (
                ("cabin", tenant.staff, resources),
                ("staff", tenant.staff[:1], []),
            ):
                service, starts, _ = races[race]
                context = await load_service_context(conn, tenant.business_id, service)
                place = partial(_place, conn, context, staff_ids, resource_ids, starts, desk)
                cpu, wall = await _per_call(place, calls)
                print(f"  booking_place, {race} loser{' ' * 16}wall {wall:.3f} ms")

        real = placing._alternatives
        shared: dict[str, list[dict[str, Any]]] = {}

        async def one_answer(*args: Any) -> list[dict[str, Any]]:
            key = str(args[0].service_id)
            if key not in shared:
                shared[key] = await real(*args)
            return shared[key]

        placing._alternatives = one_answer  # type: ignore[assignment]
        try:
            for race in races:
                cpu, wall = await _per_call(partial(lose, race), calls)
                print(f"  create_booking, {race} loser          cpu {cpu:.3f} wall {wall:.3f} ms")
        finally:
            placing._alternatives = real
        async with db.connection() as conn:
            for race, (service, starts, _) in races.items():
                context = await load_service_context(conn, tenant.business_id, service)
                search = partial(_search, conn, context, starts)
                cpu, wall = await _per_call(search, max(10, calls // 10))
                print(f"  alternatives search, {race}           cpu {cpu:.3f} wall {wall:.3f} ms")
    finally:
        await db.close_pool()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loser", description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--db", default="booking_bench_loser", help="bench database (recreated)")
    args = parser.parse_args(argv)
    os.environ.setdefault("PICCOLO_CONF", "booking.piccolo_conf")
    asyncio.run(measure(args.db, args.calls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
