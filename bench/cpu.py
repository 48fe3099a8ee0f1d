"""Where the CPU of one booking goes: `python -m bench.cpu`.

Throughput on a 2-core machine is a CPU budget shared by the load generator, the
API process and PostgreSQL. This drives 64-client bookings through the API, then
the raw asyncpg baseline, and reads each process's CPU time from /proc around
the measured seconds: API process, PostgreSQL backends (every process of the
local stack's PostgreSQL user) and the load generator (this process), per
booking, plus the machine's busy cores. For the raw baseline PostgreSQL is the
machine's busy time minus the load generator (its pool opens new backends
during the run).

How the 2026-11-27 write-path work was found and checked (bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterable

from bench import scenarios
from bench.seed import seeded_database
from bench.server import running_api

TICKS = os.sysconf("SC_CLK_TCK")
CLIENTS = 64


def process_cpu(pids: Iterable[int]) -> float:
    """User + system CPU seconds of these processes (the ones still alive)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def machine_busy() -> float:
    """CPU seconds the whole machine spent not idle (all cores)."""
    with open("/proc/stat") as stat:
        values = [int(value) for value in stat.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICKS


def pids_of(*pgrep_args: str) -> list[int]:
    found = subprocess.run(["pgrep", *pgrep_args], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


async def measure(dbname: str, seconds: float) -> None:
    url, redis_url, world = await seeded_database(dbname, 1_000)
    me = [os.getpid()]
    cursor = scenarios.SlotCursor(world.first_day)
    with running_api(url, redis_url) as base:
        port = base.rsplit(":", 1)[1]  # this run's server only, not another `booking api`
        api = pids_of("-f", f"booking api .*--port {port} ")
        await scenarios.api_bookings(base, world, cursor, CLIENTS, 2, 1)  # warm
        postgres = pids_of("-u", "booking-pg")
        before = (process_cpu(api), process_cpu(postgres), process_cpu(me), machine_busy())
        began = time.perf_counter()
        through_api = await scenarios.api_bookings(base, world, cursor, CLIENTS, seconds, 0)
        wall = time.perf_counter() - began
        after = (process_cpu(api), process_cpu(postgres), process_cpu(me), machine_busy())
    api_s, pg_s, gen_s, busy_s = (b - a for a, b in zip(before, after, strict=True))
    done = through_api.completed
    print(
        f"API, {CLIENTS} clients: {through_api.rate:,.0f} bookings/s, "
        f"busy cores {busy_s / wall:.2f}"
    )
    print(
        f"  CPU per booking: API process {1e3 * api_s / done:.2f} ms, "
        f"PostgreSQL {1e3 * pg_s / done:.2f} ms, load generator {1e3 * gen_s / done:.2f} ms"
    )
    await scenarios.raw_bookings(url, world, cursor, CLIENTS, 1, 0.5)  # warm
    gen0, busy0 = process_cpu(me), machine_busy()
    began = time.perf_counter()
    raw = await scenarios.raw_bookings(url, world, cursor, CLIENTS, seconds, 0)
    wall = time.perf_counter() - began
    gen_s, busy_s = process_cpu(me) - gen0, machine_busy() - busy0
    print(
        f"raw asyncpg, {CLIENTS} clients: {raw.rate:,.0f} bookings/s, "
        f"busy cores {busy_s / wall:.2f}"
    )
    print(
        f"  CPU per booking: PostgreSQL (machine minus generator) "
        f"{1e3 * (busy_s - gen_s) / raw.completed:.2f} ms, "
        f"load generator {1e3 * gen_s / raw.completed:.2f} ms"
    )
    print(f"ratio API/raw: {through_api.rate / raw.rate:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__)
    parser.add_argument("--db", default="booking_bench_cpu", help="bench database (recreated)")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    os.environ.setdefault("PICCOLO_CONF", "booking.piccolo_conf")
    asyncio.run(measure(args.db, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
