"""Counter rebooking while the near days fill up: `python -m bench.counter`.

`bench.hotpaths` times the counter change (GET front-desk/rebooking/{code}, then
PATCH the booking onto the first alternative) once per round, on a month seeded 93 %
full and with today still free, so it mostly times searches that find five free
slots today. A desk that rebooks all morning fills the near days itself: each pass
here moves ``--requests`` bookings onto the earliest free time the lookup offered,
so the next pass searches further out and moves onto busier times (fewer free staff
at the offered start). ``--passes`` passes run on one seeded database.

With ``--baseline-tree DIR`` (a checkout of an earlier commit, e.g. a `git worktree`)
the same passes run on a database of the baseline's own, migrated by the baseline's
migrations (so its PL/pgSQL functions too) and served by its `src/`, the two trees
alternating which goes first. Each pass prints lookup, change and total p50/p99, the
baseline's same pass beside it.

    python -m bench.counter --rounds 2 --passes 4 --baseline-tree /tmp/base
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
from bench.seed import seeded_database
from bench.server import python_path, running_api
from bench.stats import Latency


@dataclass(frozen=True, slots=True)
class Pass:
    variant: str
    number: int
    found: scenarios.CounterChange


async def _variant(variant: str, tree: Path | None, args: argparse.Namespace) -> list[Pass]:
    with python_path(*([tree / "src", tree] if tree else [])):
        url, redis_url, world = await seeded_database(f"{args.db}_{variant}", 10_000)
        passes = []
        with running_api(url, redis_url) as base:
            for number in range(1, args.passes + 1):
                found = await scenarios.counter_change(base, url, world, args.requests)
                passes.append(Pass(variant, number, found))
                print(
                    f"  {variant:8} pass {number}: lookup {_ms(found.lookup)}  "
                    f"change {_ms(found.change)}  total {_ms(found.total)}  "
                    f"failures {found.failures}",
                    file=sys.stderr,
                    flush=True,
                )
    return passes


def _ms(latency: Latency) -> str:
    return f"{latency.p50_ms:.1f}/{latency.p99_ms:.1f} ms"


async def run(args: argparse.Namespace) -> list[Pass]:
    variants: list[tuple[str, Path | None]] = [("current", None)]
    if args.baseline_tree is not None:
        variants.append(("baseline", args.baseline_tree))
    found: list[Pass] = []
    for index in range(args.rounds):
        for variant, tree in variants if index % 2 == 0 else variants[::-1]:
            found += await _variant(variant, tree, args)
    return found


def table(passes: list[Pass]) -> list[str]:
    variants = list(dict.fromkeys(p.variant for p in passes))
    head = "| pass | " + " | ".join(
        f"{v} lookup | {v} change | {v} total p50 / p99" for v in variants
    )
    lines = [head + " |", "|---" * (1 + 3 * len(variants)) + "|"]

    def med(values: list[float]) -> float:
        return statistics.median(values)

    for number in sorted({p.number for p in passes}):
        cells = [str(number)]
        for variant in variants:
            mine = [p.found for p in passes if p.variant == variant and p.number == number]
            for part in ("lookup", "change", "total"):
                figures: list[Latency] = [getattr(f, part) for f in mine]
                cells.append(
                    f"{med([x.p50_ms for x in figures]):.1f} / "
                    f"{med([x.p99_ms for x in figures]):.1f} ms"
                )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.counter",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=2, help="runs of each tree")
    parser.add_argument("--passes", type=int, default=4, help="passes per run, one database")
    parser.add_argument("--requests", type=int, default=200, help="rebookings per pass")
    parser.add_argument("--baseline-tree", type=Path, help="a checkout to compare against")
    parser.add_argument("--db", default="booking_bench_counter", help="prefix, recreated")
    args = parser.parse_args(argv)
    os.environ.setdefault("PICCOLO_CONF", "booking.piccolo_conf")
    passes = asyncio.run(run(args))
    if any(p.found.failures for p in passes):
        print("some rebookings failed (see the per-pass lines)", file=sys.stderr)
    print(f"machine: {machine()}")
    command = f"python -m bench.counter --rounds {args.rounds} --passes {args.passes}"
    command += f" --requests {args.requests}"
    if args.baseline_tree is not None:
        command += f" --baseline-tree {args.baseline_tree}"
    print(f"command: {command}")
    print("10,000 existing bookings; median over rounds of each pass's p50 / p99")
    print()
    print("\n".join(table(passes)))
    return 1 if any(p.found.failures for p in passes) else 0


if __name__ == "__main__":
    sys.exit(main())
