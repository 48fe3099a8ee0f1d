"""Only the two races of `bench.run`, repeated: `python -m bench.race [--rounds N]`.

Seeds the searched business as `bench.run` does (10,000 bookings by default), starts
the API, then per round: the staff-only race (500 clients / 20 slots) and the cabin
race (500 clients, any staff / any of 5 cabins), each on a day of its own after the
searched month, each with its burst floor (the same clients GETting the business at
once just before) and the CPU the API and PostgreSQL spent on it. A minute instead
of `bench.run --quick`'s several, for iterating on the losers' path; the figures are
comparable only within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable
from pathlib import Path

from bench import scenarios
from bench.cpu import pids_of, process_cpu
from bench.profile import summarize
from bench.seed import issue_keys, prepare_database, seed
from bench.server import ROOT, running_api
from bench.stats import Latency


def _ms(latency: Latency | None) -> str:
    if latency is None:
        return "-"
    return f"{latency.p50_ms:6.1f} / {latency.p99_ms:6.1f} ms"


def _line(name: str, race: scenarios.Contention, cpu: tuple[float, float]) -> str:
    return (
        f"  {name:<6} cpu api/pg {cpu[0]:4.2f}/{cpu[1]:4.2f} s  "
        f"won {race.winners:>2} rows {race.rows_in_database:>2} "
        f"overlaps {race.overlapping_allocations} exact={race.exact} other={race.other}  "
        f"409 {_ms(race.loser_latency)}  201 {_ms(race.winner_latency)}  "
        f"burst floor {_ms(race.burst_floor)}"
    )


async def run(args: argparse.Namespace) -> int:
    from booking import db

    url, redis_url = prepare_database(args.db)
    await db.start_pool(url, 1, 4)
    try:
        world = await seed(url, args.bookings)
        await issue_keys(world)
    finally:
        await db.close_pool()
    cabins = await scenarios.cabin_service(url, world)
    exact = True
    # CPU seconds of the API process(es) and of this checkout's PostgreSQL backends
    # around each race (connect, burst floor and race together).
    pidfile = ROOT / ".local" / "pg" / "data" / "postmaster.pid"
    postmaster = pidfile.read_text().split()[0] if pidfile.is_file() else None
    with running_api(url, redis_url, workers=args.workers, profile_to=args.profile) as base:
        port = base.rsplit(":", 1)[1]
        api = pids_of("-f", f"booking api .*--port {port} ")
        api += [child for pid in api for child in pids_of("-P", str(pid))]

        async def measured(
            race: Awaitable[scenarios.Contention],
        ) -> tuple[scenarios.Contention, tuple[float, float]]:
            postgres = pids_of("-P", postmaster) if postmaster else []
            before = process_cpu(api), process_cpu(postgres)
            result = await race
            postgres = pids_of("-P", postmaster) if postmaster else []
            after = process_cpu(api), process_cpu(postgres)
            return result, (after[0] - before[0], after[1] - before[1])

        for round_ in range(args.rounds):
            races = []
            if not args.cabin_only:
                races.append(
                    (
                        "staff",
                        *await measured(
                            scenarios.contention(
                                base, url, world, clients=args.clients, day_offset=2 * round_
                            )
                        ),
                    )
                )
            races.append(
                (
                    "cabin",
                    *await measured(
                        scenarios.contention(
                            base,
                            url,
                            world,
                            clients=args.clients,
                            slots=5,
                            service_id=cabins,
                            any_staff=True,
                            day_offset=2 * round_ + 1,
                        )
                    ),
                )
            )
            print(f"round {round_ + 1} (workers={args.workers}, load {os.getloadavg()[0]:.2f})")
            for name, race, cpu in races:
                print(_line(name, race, cpu), flush=True)
                exact = exact and race.exact
    if args.profile:
        print(summarize(args.profile))
    return 0 if exact else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.race", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--bookings", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1, help="booking api --workers")
    parser.add_argument("--cabin-only", action="store_true", help="skip the staff-only race")
    parser.add_argument("--profile", type=Path, help="run the API under py-spy, raw output here")
    parser.add_argument("--db", default="booking_bench_race", help="bench database (recreated)")
    args = parser.parse_args(argv)
    os.environ.setdefault("PICCOLO_CONF", "booking.piccolo_conf")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
