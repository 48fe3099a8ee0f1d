"""Profile the API under a benchmark load with py-spy: `python -m bench.profile`.

Seeds 10,000 bookings, runs `booking api` under `py-spy record`, drives one
scenario (default: month availability searches, the slowest path; or 64-client
bookings, or the 500-client race), then prints where the server's time went:
the functions with the most samples on the stack (inclusive) and at the top of
it (self), restricted to frames worth reading.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import Counter
from pathlib import Path

from bench import scenarios
from bench.seed import DEFAULT_DB, seeded_database
from bench.server import ROOT, running_api


def summarize(raw: Path, top: int = 25) -> str:
    """Inclusive and self sample counts per frame from py-spy's raw (collapsed) output."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if not frame.startswith("process ")]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            own[frames[-1]] += count
    if not total:
        return "no samples"

    def table(counter: Counter[str], keep: str) -> list[str]:
        rows = [(frame, n) for frame, n in counter.most_common() if keep in frame][:top]
        return [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in rows]

    return "\n".join(
        [
            f"{total} samples",
            "inclusive, booking code:",
            *table(inclusive, "booking/"),
            "self (top of stack), any code:",
            *table(own, ""),
        ]
    )


async def drive(scenario: str, requests: int, dbname: str = DEFAULT_DB) -> Path:
    url, redis_url, world = await seeded_database(dbname, 10_000)
    out = ROOT / ".local" / f"profile-{scenario}.txt"
    with running_api(url, redis_url, profile_to=out) as base:
        if scenario == "search":
            await scenarios.availability(base, world, requests)
        elif scenario == "bookings":
            cursor = scenarios.SlotCursor(world.first_day)
            await scenarios.api_bookings(base, world, cursor, 64, requests / 50, 0.5)
        elif scenario == "race":
            await scenarios.contention(base, url, world)
        else:
            await scenarios.counter_change(base, url, world, requests)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument(
        "scenario", nargs="?", default="search", choices=["search", "bookings", "race", "counter"]
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--db", default=DEFAULT_DB, help="bench database (recreated)")
    args = parser.parse_args(argv)
    os.environ.setdefault("PICCOLO_CONF", "booking.piccolo_conf")
    out = asyncio.run(drive(args.scenario, args.requests, args.db))
    print(f"raw profile: {out}")
    print(summarize(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
