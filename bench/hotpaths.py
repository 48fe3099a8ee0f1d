"""A/B the three hot paths of issue 6 against a baseline tree: `python -m bench.hotpaths`.

On a shared machine one run of `bench.run` moves with the neighbours' load, so
this command measures the current tree and (with ``--baseline-src DIR``, a copy
of ``src/`` from before a change) the baseline tree in alternating rounds on the
same seeded database (10,000 bookings), each API figure beside its own same-run
baseline:

* bookings/s at 64 clients through the API  vs  raw asyncpg at 64 clients,
  measured right before it (the issue's target: >= 0.40x);
* month availability p50/p99 (target p99 <= 25 ms), beside the HTTP floor;
* counter change (lookup + change) p50/p99 (target p99 <= 20 ms).

The baseline tree runs as the same `booking api` process with ``PYTHONPATH`` put
first (the schema, seed and load generator are the current tree's). Medians
over the rounds are printed; every round is printed too.

    python -m bench.hotpaths --rounds 3 --baseline-src /tmp/old_src
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import scenarios
from bench.run import machine
from bench.seed import BenchWorld, seeded_database
from bench.server import python_path, running_api
from bench.stats import Latency


@dataclass(frozen=True, slots=True)
class Round:
    variant: str
    raw64: float
    api64: float
    floor: Latency
    month: Latency
    counter: Latency

    @property
    def share(self) -> float:
        return self.api64 / self.raw64 if self.raw64 else float("nan")


async def _one(
    variant: str,
    src: Path | None,
    url: str,
    redis_url: str,
    world: BenchWorld,
    cursor: scenarios.SlotCursor,
    args: argparse.Namespace,
) -> Round:
    with python_path(*([src] if src else [])), running_api(url, redis_url) as base:
        floor = await scenarios.http_floor(base, world.search, args.requests)
        raw = await scenarios.raw_bookings(url, world, cursor, 64, args.seconds, 0.5)
        api = await scenarios.api_bookings(base, world, cursor, 64, args.seconds, 0.5)
        search = await scenarios.availability(base, world, args.requests)
        counter = await scenarios.counter_change(base, url, world, args.requests)
    found = Round(variant, raw.rate, api.rate, floor, search["month"][0], counter.total)
    print(
        f"  {variant:8} raw@64 {found.raw64:6.0f}/s  api@64 {found.api64:6.0f}/s "
        f"({found.share:.2f}x)  month {_ms(found.month)}  counter {_ms(found.counter)}  "
        f"floor {_ms(found.floor)}",
        file=sys.stderr,
        flush=True,
    )
    return found


def _ms(latency: Latency) -> str:
    return f"{latency.p50_ms:.1f}/{latency.p99_ms:.1f} ms"


async def run(args: argparse.Namespace) -> list[Round]:
    url, redis_url, world = await seeded_database(args.db, 10_000)
    cursor = scenarios.SlotCursor(world.first_day)
    variants: list[tuple[str, Path | None]] = [("current", None)]
    if args.baseline_src is not None:
        variants.append(("baseline", args.baseline_src))
    rounds: list[Round] = []
    for index in range(args.rounds):
        order = variants if index % 2 == 0 else variants[::-1]
        for variant, src in order:
            rounds.append(await _one(variant, src, url, redis_url, world, cursor, args))
    return rounds


def table(rounds: list[Round]) -> list[str]:
    lines = [
        "| variant (median of rounds) | API bk/s @64 | raw bk/s @64 | API/raw | "
        "month p50 / p99 | counter p50 / p99 | HTTP floor p50 / p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in dict.fromkeys(r.variant for r in rounds):
        mine = [r for r in rounds if r.variant == variant]

        def med(values: list[float]) -> float:
            return statistics.median(values)

        lines.append(
            f"| {variant} ({len(mine)} rounds) | {med([r.api64 for r in mine]):,.0f}/s | "
            f"{med([r.raw64 for r in mine]):,.0f}/s | {med([r.share for r in mine]):.2f}x | "
            f"{med([r.month.p50_ms for r in mine]):.1f} / "
            f"{med([r.month.p99_ms for r in mine]):.1f} ms | "
            f"{med([r.counter.p50_ms for r in mine]):.1f} / "
            f"{med([r.counter.p99_ms for r in mine]):.1f} ms | "
            f"{med([r.floor.p50_ms for r in mine]):.1f} / "
            f"{med([r.floor.p99_ms for r in mine]):.1f} ms |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hotpaths",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="per throughput point")
    parser.add_argument("--requests", type=int, default=100, help="per latency figure")
    parser.add_argument("--baseline-src", type=Path, help="a src/ dir to compare against")
    parser.add_argument("--db", default="booking_bench_hotpaths", help="recreated")
    args = parser.parse_args(argv)
    os.environ.setdefault("PICCOLO_CONF", "booking.piccolo_conf")
    rounds = asyncio.run(run(args))
    print(f"machine: {machine()}")
    command = f"python -m bench.hotpaths --rounds {args.rounds} --seconds {args.seconds:g}"
    command += f" --requests {args.requests}"
    if args.baseline_src is not None:
        command += f" --baseline-src {args.baseline_src}"
    print(f"command: {command}")
    print("10,000 existing bookings; p99 of N sequential requests = nearest rank")
    print()
    print("\n".join(table(rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
