"""What metrics and structured logging cost the API: `python -m bench.telemetry`.

One run, one database, two API processes of the same build started side by side:

* **on**: as compose.yaml runs it - request metrics and /metrics (``BOOKING_METRICS=1``),
  one JSON access-log line per request (``BOOKING_ACCESS_LOG=1``, ``BOOKING_LOG_FORMAT=json``,
  ``BOOKING_LOG_LEVEL=INFO``, no ``--quiet``), written to a file;
* **off**: ``BOOKING_METRICS=0``, ``BOOKING_ACCESS_LOG=0`` (what ``--quiet`` sets),
  ``BOOKING_LOG_LEVEL=WARNING``.

Non-conflicting bookings (POST /v1/businesses/{id}/bookings, the same scenario as
bench.run's API throughput) are driven against each in alternating rounds
(off, on, on, off, ...) so that a machine that gets busier or quieter during the run
weighs on both alike. Printed: bookings/s of each, and on/off (goal >= 0.95).
Afterwards it checks that the two really differ: "on" answers /metrics with moved
counters and wrote access lines; "off" refuses /metrics and wrote none.

    python -m bench.telemetry [--bookings 2000] [--clients 16] [--seconds 5] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import httpx

from bench.run import machine
from bench.scenarios import SlotCursor, Throughput, api_bookings
from bench.seed import seeded_database
from bench.server import ROOT, running_api

ON = {
    "BOOKING_METRICS": "1",
    "BOOKING_ACCESS_LOG": "1",
    "BOOKING_LOG_FORMAT": "json",
    "BOOKING_LOG_LEVEL": "INFO",
}
OFF = {"BOOKING_METRICS": "0", "BOOKING_ACCESS_LOG": "0", "BOOKING_LOG_LEVEL": "WARNING"}


def _total(runs: list[Throughput]) -> tuple[float, int]:
    completed = sum(r.completed for r in runs)
    seconds = sum(r.seconds for r in runs)
    return (completed / seconds if seconds else 0.0), sum(r.errors for r in runs)


def _access_lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if '"booking.access"' in line)


async def _metrics_status(base: str) -> tuple[int, str]:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        answer = await client.get("/metrics")
    return answer.status_code, answer.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=2000, help="seeded bookings")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0, help="per round")
    parser.add_argument("--warmup", type=float, default=1.0, help="per round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per process")
    args = parser.parse_args()
    url, redis_url, world = asyncio.run(seeded_database("booking_bench_telemetry", args.bookings))
    print(f"machine: {machine()}")
    print(
        f"seeded {world.bookings} bookings; {args.clients} clients, "
        f"{args.rounds} x {args.seconds:g} s per process, alternating"
    )
    logs = {name: ROOT / ".local" / f"bench-telemetry-{name}.log" for name in ("on", "off")}
    cursor = SlotCursor(world.first_day)
    runs: dict[str, list[Throughput]] = {"on": [], "off": []}
    with (
        running_api(url, redis_url, extra_env=ON, quiet=False, log_path=logs["on"]) as on,
        running_api(url, redis_url, extra_env=OFF, log_path=logs["off"]) as off,
    ):
        bases = {"on": on, "off": off}
        order = [name for r in range(args.rounds) for name in (("off", "on"), ("on", "off"))[r % 2]]
        for name in order:
            result = asyncio.run(
                api_bookings(bases[name], world, cursor, args.clients, args.seconds, args.warmup)
            )
            runs[name].append(result)
            print(
                f"  {name:>3}: {result.rate:7.1f} bookings/s  p99 {result.latency.p99_ms:6.1f} ms"
                f"  ({result.errors} errors)",
                flush=True,
            )
        on_status, on_text = asyncio.run(_metrics_status(on))
        off_status, _ = asyncio.run(_metrics_status(off))
    on_rate, on_errors = _total(runs["on"])
    off_rate, off_errors = _total(runs["off"])
    moved = any(
        line.startswith('booking_bookings_total{outcome="created"}') and float(line.split()[-1]) > 0
        for line in on_text.splitlines()
    )
    print("API booking throughput, same build, same run:")
    print(f"  metrics + structured logs on : {on_rate:7.1f} bookings/s ({on_errors} errors)")
    print(f"  metrics + structured logs off: {off_rate:7.1f} bookings/s ({off_errors} errors)")
    ratio = on_rate / off_rate if off_rate else 0.0
    print(f"  on / off: {ratio:.3f}x  (goal >= 0.95x)")
    print(
        f"check: on /metrics {on_status} (booking counters present: {moved}), "
        f"{_access_lines(logs['on'])} access lines; "
        f"off /metrics {off_status}, {_access_lines(logs['off'])} access lines"
    )


if __name__ == "__main__":
    main()
