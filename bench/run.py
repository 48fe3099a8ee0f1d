"""Run every benchmark and print the table: `python -m bench.run [--quick]`.

Each figure stands beside a baseline measured in the same run on the same
machine, as a ratio:
* bookings/s through the API  vs  raw asyncpg INSERTs of the same rows
  (booking + allocations + history + outbox in one transaction: the database's own
  limit), for the staff-only service and, at 64 clients, a staff + cabin one;
* latencies  vs  the HTTP floor (GET the business: auth + one SELECT), and the
  contended booking vs the uncontended one;
* SMS/s and commit->send lag of the notification pipeline (bench/notifications.py:
  worker and fake Twilio as their own processes)  vs  raw arq no-op jobs on a
  worker with the same settings.
The API runs as `booking api` (uvicorn) in its own process with production
settings against the shared local PostgreSQL and Redis, on its own database
(booking_bench, recreated).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import scenarios
from bench.seed import DEFAULT_DB, issue_keys, prepare_database, seed
from bench.server import running_api
from bench.stats import Latency, ratio

CLIENT_LEVELS = (1, 16, 64)


@dataclass
class SizeResult:
    bookings: int
    workers: int
    floor: Latency
    raw: dict[int, scenarios.Throughput] = field(default_factory=dict)
    api: dict[int, scenarios.Throughput] = field(default_factory=dict)
    api_more_workers: dict[int, scenarios.Throughput] = field(default_factory=dict)
    cabin_raw: scenarios.Throughput | None = None  # staff + cabin, 64 clients
    cabin_api: scenarios.Throughput | None = None
    contention: scenarios.Contention | None = None
    cabin_contention: scenarios.Contention | None = None
    cabin_search: dict[str, tuple[Latency, int]] = field(default_factory=dict)
    search: dict[str, tuple[Latency, int]] = field(default_factory=dict)
    search_sql: Latency | None = None
    counter: scenarios.CounterChange | None = None


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    seconds: float
    warmup: float
    requests: int
    workers: int
    compare_workers: int  # 0: no comparison
    contention_clients: int
    sms_bookings: int = 500  # benchmark 5: burst, then a paced round
    sms_paced: int = 100
    sms_rate: float = 20.0


def plan_for(args: argparse.Namespace) -> Plan:
    if args.quick:
        return Plan((1_000, 10_000), 1.5, 0.5, 40, args.workers, 0, 500, 300, 60, 20.0)
    return Plan((1_000, 10_000, 100_000), 4.0, 1.0, 150, args.workers, 2, 500)


async def _throughput(
    base: str, url: str, world: Any, cursor: scenarios.SlotCursor, plan: Plan, result: SizeResult
) -> None:
    for clients in CLIENT_LEVELS:
        result.raw[clients] = await scenarios.raw_bookings(
            url, world, cursor, clients, plan.seconds, plan.warmup
        )
        result.api[clients] = await scenarios.api_bookings(
            base, world, cursor, clients, plan.seconds, plan.warmup
        )
        say(
            f"    {clients:>2} clients: raw {result.raw[clients].rate:7.0f}/s  "
            f"api {result.api[clients].rate:7.0f}/s ({result.api[clients].errors} errors)"
        )
    cabins = await scenarios.cabin_writes(url, world)
    result.cabin_raw = await scenarios.raw_bookings(
        url, world, cursor, 64, plan.seconds, plan.warmup, cabins=cabins
    )
    result.cabin_api = await scenarios.api_bookings(
        base, world, cursor, 64, plan.seconds, plan.warmup, cabins=cabins
    )
    say(
        f"    64 clients, staff + cabin: raw {result.cabin_raw.rate:7.0f}/s  "
        f"api {result.cabin_api.rate:7.0f}/s ({result.cabin_api.errors} errors)"
    )


async def run_size(url: str, redis_url: str, plan: Plan, bookings: int) -> SizeResult:
    began = time.perf_counter()
    world = await seed(url, bookings)
    await issue_keys(world)
    say(f"  seeded {world.bookings} bookings in {time.perf_counter() - began:.1f}s")
    cursor = scenarios.SlotCursor(world.first_day)
    with running_api(url, redis_url, workers=plan.workers) as base:
        result = SizeResult(
            bookings=world.bookings,
            workers=plan.workers,
            floor=await scenarios.http_floor(base, world.search, plan.requests),
        )
        await _throughput(base, url, world, cursor, plan, result)
        result.contention = await scenarios.contention(
            base, url, world, clients=plan.contention_clients
        )
        say(f"    contention: {result.contention.winners} winners, exact={result.contention.exact}")
        cabins = await scenarios.cabin_service(url, world)
        result.cabin_contention = await scenarios.contention(
            base,
            url,
            world,
            clients=plan.contention_clients,
            slots=5,
            service_id=cabins,
            any_staff=True,
            day_offset=1,
        )
        say(
            f"    cabin race: {result.cabin_contention.winners} winners, "
            f"exact={result.cabin_contention.exact}"
        )
        result.cabin_search = await scenarios.availability(
            base, world, plan.requests, service_id=cabins
        )
        result.search = await scenarios.availability(base, world, plan.requests)
        result.search_sql = await scenarios.availability_sql(url, world, plan.requests)
        result.counter = await scenarios.counter_change(base, url, world, plan.requests)
        say(
            f"    search month p99 {result.search['month'][0].p99_ms:.1f} ms, "
            f"counter p99 {result.counter.total.p99_ms:.1f} ms"
        )
    if plan.compare_workers and bookings == 10_000:
        with running_api(url, redis_url, workers=plan.compare_workers) as base:
            for clients in (16, 64):
                result.api_more_workers[clients] = await scenarios.api_bookings(
                    base, world, cursor, clients, plan.seconds, plan.warmup
                )
            say(
                f"    --workers {plan.compare_workers}: 64 clients "
                f"{result.api_more_workers[64].rate:.0f}/s"
            )
    return result


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _ms(latency: Latency | None) -> str:
    if latency is None or math.isnan(latency.p50_ms):
        return "-"
    return f"{latency.p50_ms:.1f} / {latency.p99_ms:.1f} ms"


def _x(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}x"


def main_table(
    result: SizeResult, plan: Plan, sms: scenarios.NotificationPipeline | None = None
) -> list[str]:
    rows: list[tuple[str, str, str, str, str, str]] = []
    for clients in CLIENT_LEVELS:
        api, raw = result.api[clients], result.raw[clients]
        target = "≥ 0.60x" if clients == 64 else ""
        verdict = ("met" if ratio(api.rate, raw.rate) >= 0.60 else "missed") if target else ""
        rows.append(
            (
                f"1 bookings/s, {clients} client(s), workers={result.workers}",
                f"{api.rate:,.0f}/s",
                f"raw asyncpg {raw.rate:,.0f}/s",
                _x(ratio(api.rate, raw.rate)),
                target,
                verdict,
            )
        )
    if result.cabin_api is not None and result.cabin_raw is not None:
        api, raw = result.cabin_api, result.cabin_raw
        rows.append(
            (
                f"1c bookings/s, staff + cabin, 64 clients, workers={result.workers}",
                f"{api.rate:,.0f}/s",
                f"raw asyncpg {raw.rate:,.0f}/s",
                _x(ratio(api.rate, raw.rate)),
                "≥ 0.60x",
                "met" if ratio(api.rate, raw.rate) >= 0.60 else "missed",
            )
        )
    for clients, api in result.api_more_workers.items():
        raw = result.raw[clients]
        rows.append(
            (
                f"1 bookings/s, {clients} clients, workers={plan.compare_workers}",
                f"{api.rate:,.0f}/s",
                f"raw asyncpg {raw.rate:,.0f}/s",
                _x(ratio(api.rate, raw.rate)),
                "",
                "",
            )
        )
    uncontended = result.api[1].latency
    if result.contention is not None:
        c = result.contention
        rows.append(
            (
                f"2 race: {c.clients} clients for {c.slots} slots",
                f"{c.winners} won, {c.losers_409_with_alternatives} got 409 + alternatives",
                f"{c.rows_in_database} rows in the database",
                "",
                "exactly 20 winners",
                "met" if c.exact else f"missed {c.other}",
            )
        )
        rows.append(
            (
                "2 winner latency p50 / p99",
                _ms(c.winner_latency),
                f"uncontended booking {_ms(uncontended)}",
                _x(ratio(c.winner_latency.p99_ms, uncontended.p99_ms)),
                "",
                "",
            )
        )
        if c.burst_floor is not None:
            rows.append(
                (
                    f"2 floor of a burst: {c.clients} GETs of the business at once",
                    _ms(c.burst_floor),
                    f"HTTP floor {_ms(result.floor)}",
                    _x(ratio(c.burst_floor.p99_ms, result.floor.p99_ms)),
                    "",
                    "",
                )
            )
        rows.append(
            (
                "2 loser (409) latency p50 / p99",
                _ms(c.loser_latency),
                f"uncontended booking {_ms(uncontended)}",
                _x(ratio(c.loser_latency.p99_ms, uncontended.p99_ms)),
                "p99 ≤ 250 ms",
                "met" if c.loser_latency.p99_ms <= 250 else "missed",
            )
        )
    if result.cabin_contention is not None:
        c = result.cabin_contention
        rows.append(
            (
                f"2c race, any staff + any cabin: {c.clients} clients, {c.slots} cabins",
                f"{c.winners} won, {c.losers_409_with_alternatives} got 409 + alternatives",
                f"{c.rows_in_database} rows, {c.overlapping_allocations} overlapping allocations",
                "",
                "exactly 5 winners, 0 overlaps",
                "met" if c.exact else f"missed {c.other}",
            )
        )
        rows.append(
            (
                "2c loser (409) latency p50 / p99",
                _ms(c.loser_latency),
                f"uncontended booking {_ms(uncontended)}",
                _x(ratio(c.loser_latency.p99_ms, uncontended.p99_ms)),
                "p99 ≤ 250 ms",
                "met" if c.loser_latency.p99_ms <= 250 else "missed",
            )
        )
        rows.append(
            (
                "2c winner latency p50 / p99",
                _ms(c.winner_latency),
                f"uncontended booking {_ms(uncontended)}",
                _x(ratio(c.winner_latency.p99_ms, uncontended.p99_ms)),
                "",
                "",
            )
        )
    for name, (latency, size) in result.cabin_search.items():
        rows.append(
            (
                f"3c availability + 5 cabins, one {name} ({size // 1024} KiB)",
                _ms(latency),
                f"HTTP floor {_ms(result.floor)}",
                _x(ratio(latency.p99_ms, result.floor.p99_ms)),
                "p99 ≤ 25 ms" if name == "month" else "",
                ("met" if latency.p99_ms <= 25 else "missed") if name == "month" else "",
            )
        )
    goals = {"month": 25.0, "staff day": 6.0}  # p99, ms
    for name, (latency, size) in result.search.items():
        goal = goals.get(name)
        target = f"p99 ≤ {goal:.0f} ms" if goal else ""
        verdict = ("met" if latency.p99_ms <= goal else "missed") if goal else ""
        rows.append(
            (
                f"3 availability, one {name} ({size // 1024} KiB)",
                _ms(latency),
                f"HTTP floor {_ms(result.floor)}",
                _x(ratio(latency.p99_ms, result.floor.p99_ms)),
                target,
                verdict,
            )
        )
    if result.search_sql is not None:
        month = result.search["month"][0]
        rows.append(
            (
                "3 month: its calendar SQL alone (asyncpg)",
                _ms(result.search_sql),
                f"whole month search {_ms(month)}",
                _x(ratio(result.search_sql.p99_ms, month.p99_ms)),
                "",
                "",
            )
        )
    if result.counter is not None:
        cc = result.counter
        verdict = "met" if cc.total.p99_ms <= 20 else "missed"
        rows.append(
            (
                "4 counter change: lookup + change",
                _ms(cc.total),
                f"HTTP floor {_ms(result.floor)}",
                _x(ratio(cc.total.p99_ms, result.floor.p99_ms)),
                "p99 ≤ 20 ms",
                verdict + (f" ({cc.failures} failed)" if cc.failures else ""),
            )
        )
        rows.append(("4   lookup (GET rebooking/{code})", _ms(cc.lookup), "", "", "", ""))
        rows.append(("4   change (PATCH /v1/bookings/{id})", _ms(cc.change), "", "", "", ""))
    if sms is not None:
        rows.extend(notification_rows(sms))
    header = ("benchmark", "figure (p50 / p99)", "baseline, same run", "ratio", "target", "")
    return _markdown([header, *rows])


Row = tuple[str, str, str, str, str, str]


def notification_rows(sms: scenarios.NotificationPipeline) -> list[Row]:
    raw = f"raw arq no-op {sms.raw_jobs_per_second:,.0f} jobs/s"
    return [
        (
            f"5 SMS pipeline: {sms.bookings} bookings -> fake Twilio",
            f"{sms.sms_per_second:,.0f} SMS/s ({sms.accepted} accepted)",
            raw,
            _x(ratio(sms.sms_per_second, sms.raw_jobs_per_second)),
            "",
            "",
        ),
        (
            f"5 SMS pipeline: a backlog of {sms.bookings} rows drained",
            f"{sms.backlog_per_second:,.0f} SMS/s",
            raw,
            _x(ratio(sms.backlog_per_second, sms.raw_jobs_per_second)),
            ">= 0.5x",
            "met" if ratio(sms.backlog_per_second, sms.raw_jobs_per_second) >= 0.5 else "missed",
        ),
        (
            "5 commit->send lag, burst",
            _ms(sms.burst_lag),
            f"raw arq enqueue->execute {_ms(sms.raw_burst_lag)}",
            _x(ratio(sms.burst_lag.p99_ms, sms.raw_burst_lag.p99_ms)),
            "",
            "",
        ),
        (
            f"5 commit->send lag, {sms.paced_rate:g} bookings/s",
            _ms(sms.paced_lag),
            f"raw arq enqueue->execute {_ms(sms.raw_paced_lag)}",
            _x(ratio(sms.paced_lag.p99_ms, sms.raw_paced_lag.p99_ms)),
            "",
            "",
        ),
    ]


def scaling_table(results: list[SizeResult]) -> list[str]:
    header = (
        "existing bookings",
        "API bk/s 1 / 16 / 64",
        "raw bk/s 1 / 16 / 64",
        "API/raw @64",
        "race winner p99",
        "search p99 day / week / month",
        "counter p99",
    )
    rows = [header]
    for r in results:
        api = " / ".join(f"{r.api[c].rate:,.0f}" for c in CLIENT_LEVELS)
        raw = " / ".join(f"{r.raw[c].rate:,.0f}" for c in CLIENT_LEVELS)
        search = " / ".join(f"{r.search[n][0].p99_ms:.1f}" for n in ("day", "week", "month"))
        rows.append(
            (
                f"{r.bookings:,}",
                api,
                raw,
                _x(ratio(r.api[64].rate, r.raw[64].rate)),
                f"{r.contention.winner_latency.p99_ms:.0f} ms" if r.contention else "-",
                f"{search} ms",
                f"{r.counter.total.p99_ms:.1f} ms" if r.counter else "-",
            )
        )
    return _markdown(rows)


def _markdown(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return lines


def machine() -> str:
    cores = os.cpu_count()
    mem = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False).stdout
    total = next((line.split()[1] for line in mem.splitlines() if line.startswith("Mem:")), "?")
    pg = subprocess.run(["psql", "--version"], capture_output=True, text=True, check=False)
    return (
        f"{platform.node()}: nproc {cores}, memory {total}, Python {platform.python_version()}, "
        f"{pg.stdout.strip()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


async def run(plan: Plan, dbname: str) -> tuple[list[SizeResult], scenarios.NotificationPipeline]:
    from booking import db

    url, redis_url = prepare_database(dbname)
    await db.start_pool(url, 1, 4)
    results = []
    try:
        for size in plan.sizes:
            say(f"== {size:,} existing bookings")
            results.append(await run_size(url, redis_url, plan, size))
    finally:
        await db.close_pool()
    say(f"== 5 SMS pipeline: {plan.sms_bookings} bookings, then {plan.sms_paced} paced")
    sms = await scenarios.notification_pipeline(plan.sms_bookings, plan.sms_paced, plan.sms_rate)
    return results, sms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="short runs, 1k and 10k only")
    parser.add_argument("--workers", type=int, default=1, help="booking api --workers")
    parser.add_argument("--db", default=DEFAULT_DB, help="bench database (recreated)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("PICCOLO_CONF", "booking.piccolo_conf")
    plan = plan_for(args)
    started = time.perf_counter()
    results, sms = asyncio.run(run(plan, args.db))
    main_result = next((r for r in results if r.bookings == 10_000), results[-1])
    lines = [
        f"machine: {machine()}",
        f"command: python -m bench.run{' --quick' if args.quick else ''}"
        + (f" --workers {args.workers}" if args.workers != 1 else ""),
        "",
        f"At {main_result.bookings:,} existing bookings:",
        "",
        *main_table(main_result, plan, sms),
        "",
        "Scaling curve:",
        "",
        *scaling_table(results),
        "",
        f"total time {time.perf_counter() - started:.0f}s",
    ]
    print("\n".join(lines))
    if args.json:
        figures = {"sizes": [asdict(r) for r in results], "sms_pipeline": asdict(sms)}
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
