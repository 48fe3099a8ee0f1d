"""SMS pipeline benchmark: `python -m bench.notifications [--bookings N] [--paced M]`.

N bookings are created (booking + outbox row in one transaction, 16 concurrent
writers); the real worker (`booking worker`, its own process) relays the outbox,
runs the handlers and sends each confirmation SMS with the real twilio client to
the fake Twilio (`python -m tests.fakes.fake_twilio`, its own process). Printed:

* messages/second from the first commit to the last SMS accepted (bounded by how fast
  the 16 writers make bookings: the run prints that rate too);
* messages/second of a backlog (``--backlog`` rows committed while no worker runs,
  then drained by a fresh worker), from its first send to its last: the pipeline's
  own capacity, beside raw arq's burst, which is also a queue drained at once;
* commit -> send lag p50/p99 (outbox.created_at -> message.sent_at, both the
  database's clock), under the burst and at a paced rate;
* beside them, the raw arq rate and enqueue -> execute latency of a no-op job
  on a worker process with the same settings (poll delay, max_jobs), measured in
  the same run: the ceiling and the floor the pipeline is compared with.

Runs on the local stack (`booking.localstack`), database booking_bench_notify
(recreated) and Redis database 7 (flushed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from bench.proc import CpuMeter, postmaster_pid, tree_cpu

ROOT = Path(__file__).resolve().parents[1]
REDIS_DB = 7
NOOP_QUEUE = "bench:noop"
DONE_KEY = "bench:noop:done"
ACCOUNT_SID = "AC" + "be4c" * 8
AUTH_TOKEN = "bench-auth-token"
ROME = ZoneInfo("Europe/Rome")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def start(cmd: list[str], **options: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(cmd, cwd=ROOT, text=True, **options)


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(timeout=20)


def fake_accepted(fake_url: str) -> int:
    with urllib.request.urlopen(fake_url + "/_fake/messages") as response:  # noqa: S310
        return len(json.loads(response.read()))


def start_fake() -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "tests.fakes.fake_twilio"]
    command += ["--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN]
    fake = start(command, stdout=subprocess.PIPE)
    assert fake.stdout is not None
    return fake, fake.stdout.readline().strip()


# --------------------------------------------------------------------------- no-op worker


async def noop(ctx: dict[str, Any], enqueued_at: float) -> None:
    await ctx["redis"].rpush(DONE_KEY, f"{enqueued_at},{time.time()}")


def run_noop_worker(redis_url: str) -> None:
    from arq import Worker
    from arq.connections import RedisSettings

    from booking.worker import WorkerSettings

    Worker(
        functions=[noop],
        redis_settings=RedisSettings.from_dsn(redis_url),
        queue_name=NOOP_QUEUE,
        max_jobs=WorkerSettings.max_jobs,
        poll_delay=getattr(WorkerSettings, "poll_delay", 0.5),
        handle_signals=True,
    ).run()


async def _noop_round(redis: Any, count: int, rate: float | None, tag: str) -> dict[str, float]:
    """``count`` no-op jobs, all at once (16 concurrent) or at ``rate`` per second."""
    await redis.delete(DONE_KEY)
    started = time.time()
    semaphore = asyncio.Semaphore(16)

    async def enqueue(i: int) -> None:
        async with semaphore:
            await redis.enqueue_job(
                "noop", time.time(), _queue_name=NOOP_QUEUE, _job_id=f"{tag}{i}"
            )

    if rate:
        for i in range(count):
            tick = time.monotonic()
            await enqueue(i)
            await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - tick)))
    else:
        await asyncio.gather(*(enqueue(i) for i in range(count)))
    deadline = time.time() + 120
    while await redis.llen(DONE_KEY) < count:
        if time.time() > deadline:
            raise RuntimeError("no-op worker did not finish")
        await asyncio.sleep(0.05)
    pairs = [
        tuple(map(float, raw.decode().split(","))) for raw in await redis.lrange(DONE_KEY, 0, -1)
    ]
    lags = [(done - enqueued) * 1000 for enqueued, done in pairs]
    return {
        "rate": count / (max(done for _, done in pairs) - started),
        "p50": percentile(lags, 50),
        "p99": percentile(lags, 99),
    }


async def raw_arq(
    redis_url: str, count: int, paced: int, rate: float
) -> tuple[dict[str, float], dict[str, float]]:
    """The same no-op job in a burst (throughput) and at the paced rate (latency)."""
    from arq import create_pool
    from arq.connections import RedisSettings

    redis = await create_pool(RedisSettings.from_dsn(redis_url))
    worker = start([sys.executable, "-m", "bench.notifications", "noop-worker", redis_url])
    try:
        await asyncio.sleep(1.5)  # worker start-up is not what we measure
        burst = await _noop_round(redis, count, None, "burst")
        slow = await _noop_round(redis, paced, rate, "paced")
        return burst, slow
    finally:
        stop(worker)
        await redis.aclose()


# --------------------------------------------------------------------------- pipeline


async def seed(conn: Any) -> tuple[UUID, UUID, list[UUID]]:
    business = await conn.fetchval(
        "INSERT INTO business (slug, name, time_zone, locale, min_notice_minutes) "
        "VALUES ('bench-salon', 'Bench Salon', 'Europe/Rome', 'it', 0) RETURNING id"
    )
    staff = [
        await conn.fetchval(
            "INSERT INTO staff (business_id, name) VALUES ($1, $2) RETURNING id", business, name
        )
        for name in ("A", "B", "C", "D")
    ]
    service = await conn.fetchval(
        "INSERT INTO service (business_id, name, duration_minutes) "
        "VALUES ($1, 'Cut', 30) RETURNING id",
        business,
    )
    for staff_id in staff:
        await conn.execute(
            "INSERT INTO service_staff (business_id, service_id, staff_id) VALUES ($1, $2, $3)",
            business,
            service,
            staff_id,
        )
        for weekday in range(7):
            await conn.execute(
                "INSERT INTO working_hours (business_id, staff_id, weekday, opens_at, closes_at) "
                "VALUES ($1, $2, $3, '00:00', '23:59')",
                business,
                staff_id,
                weekday,
            )
    return business, service, staff


def slots(staff: list[UUID], first_day: int) -> Any:
    day = datetime.now(ROME).date() + timedelta(days=first_day)
    while True:
        for half_hours in range(1, 46):
            start = datetime.combine(day, clock(0), tzinfo=ROME) + timedelta(
                minutes=30 * half_hours
            )
            for staff_id in staff:
                yield staff_id, start
        day += timedelta(days=1)


async def create_bookings(
    ids: tuple[UUID, UUID, list[UUID]], count: int, first_day: int, rate: float | None
) -> None:
    from booking.access.principal import Principal
    from booking.bookings.checks import CustomerInput
    from booking.bookings.placing import create_booking

    business, service, staff = ids
    admin = Principal(kind="admin", id="bench")
    free = slots(staff, first_day)
    semaphore = asyncio.Semaphore(1 if rate else 16)

    async def one(i: int) -> None:
        staff_id, start = next(free)
        async with semaphore:
            await create_booking(
                admin,
                business,
                service,
                start,
                CustomerInput(f"Cliente {i}", f"+39333{i % 10_000_000:07d}", "it"),
                staff_id=staff_id,
            )

    if rate:
        for i in range(count):
            tick = time.monotonic()
            await one(i)
            await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - tick)))
    else:
        await asyncio.gather(*(one(i) for i in range(count)))


async def wait_for_sent(conn: Any, expected: int, limit_seconds: float) -> None:
    deadline = time.monotonic() + limit_seconds
    while (
        sent := await conn.fetchval("SELECT count(*) FROM message WHERE status = 'sent'")
    ) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {sent}/{expected} messages sent in {limit_seconds:.0f} s")
        await asyncio.sleep(0.1)


async def _max_outbox_id() -> int:
    from booking import db

    async with db.connection() as conn:
        return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM outbox"))


async def drain_figures(conn: Any, since_id: int) -> dict[str, float]:
    """SMS/s of a backlog's confirmations, from its first send to its last."""
    row = await conn.fetchrow(
        """
        SELECT count(*) AS sent, extract(epoch FROM max(m.sent_at) - min(m.sent_at)) AS span
        FROM message m JOIN outbox o ON o.id = m.outbox_id
        WHERE m.status = 'sent' AND o.id > $1
        """,
        since_id,
    )
    return {"count": row["sent"], "rate": row["sent"] / float(row["span"])}


async def lag_figures(conn: Any, since_id: int) -> dict[str, float]:
    rows = await conn.fetch(
        """
        SELECT extract(epoch FROM m.sent_at - o.created_at) * 1000 AS lag_ms,
               o.created_at, m.sent_at
        FROM message m JOIN outbox o ON o.id = m.outbox_id
        WHERE m.status = 'sent' AND o.id > $1
        """,
        since_id,
    )
    lags = [float(row["lag_ms"]) for row in rows]
    span = (max(r["sent_at"] for r in rows) - min(r["created_at"] for r in rows)).total_seconds()
    # A relay pass stamps its rows with its transaction's now(): one handled_at per pass.
    passes = await conn.fetchval(
        "SELECT count(DISTINCT handled_at) FROM outbox WHERE id > $1 AND handled_at IS NOT NULL",
        since_id,
    )
    return {
        "count": len(rows),
        "rows_per_pass": len(rows) / max(1, passes),
        "rate": len(rows) / span,
        "p50": percentile(lags, 50),
        "p99": percentile(lags, 99),
        "max": max(lags),
        "mean": statistics.fmean(lags),
    }


async def pipeline(args: argparse.Namespace) -> dict[str, Any]:
    from arq import create_pool
    from arq.connections import RedisSettings

    from bench.seed import migrate
    from booking import db, localstack

    pg_port, redis_port = localstack.env_ports()  # this checkout's stack
    stack = localstack.ensure_stack(pg_port=pg_port, redis_port=redis_port)
    database_url = localstack.ensure_database(stack, "booking_bench_notify", recreate=True)
    redis_url = stack.redis_url(REDIS_DB)
    os.environ.update(
        DATABASE_URL=database_url, REDIS_URL=redis_url, PICCOLO_CONF="booking.piccolo_conf"
    )
    migrate(database_url)  # not in this process: its settings may name another database
    redis = await create_pool(RedisSettings.from_dsn(redis_url))
    await redis.flushdb()

    fake, fake_url = start_fake()
    env = dict(os.environ)
    env.update(
        BOOKING_SMS_BACKEND="twilio",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM_NUMBER="+15005550006",
        BOOKING_TWILIO_BASE_URL=fake_url,
        BOOKING_PUBLIC_BASE_URL="https://booking.example.com",
        BOOKING_LOG_LEVEL="WARNING",
        # A production worker refuses the public default secret (exit 2): without this
        # the worker died at start and the bench waited for SMS that never came.
        BOOKING_SECRET_KEY="bench-secret-not-for-production",
    )
    worker_log_path = ROOT / ".local" / "bench-notifications-worker.log"
    worker_log_path.parent.mkdir(parents=True, exist_ok=True)
    worker_log = worker_log_path.open("w")
    worker = start(
        [sys.executable, "-m", "booking.cli", "worker"],
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    await db.start_pool(database_url, 2, 20)
    try:
        async with db.transaction() as conn:
            ids = await seed(conn)
        await asyncio.sleep(2.0)  # worker start-up is not what we measure
        if worker.poll() is not None:
            raise RuntimeError(
                f"the worker exited {worker.returncode} at start: "
                + worker_log_path.read_text()[-2000:]
            )
        # The worker's CPU per SMS while bookings stream in (its polls included): what
        # the pipeline takes from the writers on the same cores.
        worker_meter = CpuMeter(worker.pid, await postmaster_pid(database_url))
        burst_started, burst_cpu = time.monotonic(), worker_meter.now()
        await create_bookings(ids, args.bookings, first_day=2, rate=None)
        created_in = time.monotonic() - burst_started
        async with db.connection() as conn:
            await wait_for_sent(conn, args.bookings, limit_seconds=600)
            burst = await lag_figures(conn, 0)
            last_id = await conn.fetchval("SELECT max(id) FROM outbox")
        paced_cpu = worker_meter.now()
        burst["worker_cpu_ms"] = 1000 * (paced_cpu[0] - burst_cpu[0]) / args.bookings
        await create_bookings(ids, args.paced, first_day=40, rate=args.rate)
        async with db.connection() as conn:
            await wait_for_sent(conn, args.bookings + args.paced, limit_seconds=600)
            paced = await lag_figures(conn, last_id)
        paced["worker_cpu_ms"] = 1000 * (worker_meter.now()[0] - paced_cpu[0]) / args.paced
        # The backlog: rows committed while no worker runs (a deploy, a worker restart),
        # then drained by a fresh worker. Not bounded by how fast bookings are made: the
        # pipeline's own capacity, beside raw arq's burst (also a queue drained at once).
        stop(worker)
        backlog_from = await _max_outbox_id()
        await create_bookings(ids, args.backlog, first_day=80, rate=None)
        worker = start(
            [sys.executable, "-m", "booking.cli", "worker"],
            env=env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )
        # CPU of the drain, per SMS: worker, PostgreSQL (every backend of this cluster,
        # the bench's own polling included) and the fake Twilio, apart.
        meter = CpuMeter(worker.pid, await postmaster_pid(database_url))
        fake_cpu, cpu = tree_cpu(fake.pid), meter.now()
        async with db.connection() as conn:
            await wait_for_sent(conn, args.bookings + args.paced + args.backlog, 600)
            drained = await drain_figures(conn, backlog_from)
        worker_cpu, pg_cpu = (b - a for a, b in zip(cpu, meter.now(), strict=True))
        drain_cpu = {
            "worker": 1000 * worker_cpu / args.backlog,
            "postgres": 1000 * pg_cpu / args.backlog,
            "fake_twilio": 1000 * (tree_cpu(fake.pid) - fake_cpu) / args.backlog,
        }
        accepted = fake_accepted(fake_url)
    finally:
        stop(worker)
        worker_log.close()
        stop(fake)
        await db.close_pool()
        await redis.aclose()

    raw, raw_paced = await raw_arq(redis_url, args.bookings, args.paced, args.rate)
    print(
        f"SMS pipeline: {args.bookings} bookings by 16 concurrent writers in {created_in:.2f} s "
        f"({args.bookings / created_in:.0f}/s); the fake Twilio accepted {accepted} SMS"
    )
    print(f"  confirmation SMS/s, first commit to last send  {burst['rate']:8.1f}")
    print(f"  raw arq no-op jobs/s, same worker settings     {raw['rate']:8.1f}")
    print(f"  ratio SMS/s : raw jobs/s                       {burst['rate'] / raw['rate']:8.2f}")
    print(f"  commit->send lag, burst     p50 {burst['p50']:6.0f} ms   p99 {burst['p99']:6.0f} ms")
    print(
        f"  commit->send lag, {args.rate:g}/s     p50 {paced['p50']:6.0f} ms   "
        f"p99 {paced['p99']:6.0f} ms   ({paced['count']} bookings)"
    )
    print(
        f"  relay: rows per pass, burst {burst['rows_per_pass']:.1f}, {args.rate:g}/s "
        f"{paced['rows_per_pass']:.1f}; worker CPU per SMS, burst {burst['worker_cpu_ms']:.2f} "
        f"ms, {args.rate:g}/s {paced['worker_cpu_ms']:.2f} ms"
    )
    print(
        f"  backlog of {drained['count']} rows, drained by a fresh worker: SMS/s, first send to "
        f"last {drained['rate']:8.1f}"
    )
    print(f"  ratio backlog SMS/s : raw jobs/s                {drained['rate'] / raw['rate']:8.2f}")
    cpu_ms = drain_cpu
    print(
        f"  backlog CPU per SMS: worker {cpu_ms['worker']:.2f} ms + PostgreSQL "
        f"{cpu_ms['postgres']:.2f} ms + fake Twilio {cpu_ms['fake_twilio']:.2f} ms"
    )
    print(
        f"  raw arq no-op, burst        p50 {raw['p50']:6.0f} ms   p99 {raw['p99']:6.0f} ms"
        "   (enqueue->execute)"
    )
    print(
        f"  raw arq no-op, {args.rate:g}/s        p50 {raw_paced['p50']:6.0f} ms   "
        f"p99 {raw_paced['p99']:6.0f} ms"
    )
    print(
        f"  ratio paced lag p50 : raw arq paced p50      {paced['p50'] / raw_paced['p50']:8.2f}"
        "   (an SMS is two arq hops plus a relay pass and a Twilio call)"
    )
    return {
        "bookings": args.bookings,
        "accepted": accepted,
        "burst": burst,
        "paced": paced,
        "raw": raw,
        "raw_paced": raw_paced,
        "rate": args.rate,
        "backlog": drained,
        "backlog_cpu_ms": drain_cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.notifications",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command")
    noop_parser = sub.add_parser("noop-worker")
    noop_parser.add_argument("redis_url")
    parser.add_argument("--bookings", type=int, default=500)
    parser.add_argument("--paced", type=int, default=100, help="bookings created at --rate")
    parser.add_argument("--rate", type=float, default=20.0, help="paced bookings per second")
    parser.add_argument(
        "--backlog", type=int, default=1000, help="rows committed with no worker, then drained"
    )
    args = parser.parse_args(argv)
    if args.command == "noop-worker":
        run_noop_worker(args.redis_url)
        return 0
    asyncio.run(pipeline(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
