"""The outbox relay and the worker under failure: nothing lost, nothing sent twice.

The relay runs the outbox handlers itself (booking.worker.OUTBOX_HANDLERS) in the
transaction that claims the rows; arq carries only the send jobs they return.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import pytest
import redis.asyncio
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.jobs import Job, JobStatus

from booking import db
from booking.notifications.sending import send_message
from booking.notifications.sms import build_sms_sender
from booking.outbox.dispatch import FollowUpJob, Handler, OutboxEvent
from booking.outbox.service import RelayResult, relay_outbox
from booking.worker import OUTBOX_HANDLERS
from tests.notifications.fixtures import Pipeline, messages
from tests.notifications.test_pipeline import book
from tests.support import World, free_port


class PrivateRedis:
    """A redis-server of our own, to stop and start without touching the shared one."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
            ).stdout.strip()
            != b"PONG"
        ):
            assert time.monotonic() < deadline, "private redis did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def arq_pool(redis: ArqRedis) -> ArqRedis:
    return redis


async def outbox_rows() -> list[dict[str, object]]:
    async with db.connection() as conn:
        return [dict(r) for r in await conn.fetch("SELECT * FROM outbox ORDER BY id")]


async def relay(pool: ArqRedis) -> RelayResult:
    return await relay_outbox(pool, OUTBOX_HANDLERS)


async def queued_sends(pool: ArqRedis) -> list[str]:
    """The message ids the queued SMS jobs carry: one ``send_sms`` job per message, or the
    sends of a relay pass as one ``send_sms_batch`` job."""
    carried: list[str] = []
    for job in await pool.queued_jobs():
        if job.function == "send_sms":
            carried.append(job.args[0])
        elif job.function == "send_sms_batch":
            carried.extend(job.args[0])
        else:
            raise AssertionError(f"not a send job: {job.function}")
    return carried


async def all_messages() -> list[dict[str, object]]:
    async with db.connection() as conn:
        return [dict(r) for r in await conn.fetch("SELECT * FROM message ORDER BY created_at")]


async def test_relay_handles_each_committed_row_once_and_queues_only_the_sends(
    world: World, arq_pool: ArqRedis
) -> None:
    for day in (3, 4, 5):
        await book(world, days=day)

    first = await relay_outbox(arq_pool, OUTBOX_HANDLERS)
    second = await relay_outbox(arq_pool, OUTBOX_HANDLERS)

    assert (first.handled, first.failed, first.enqueued) == (3, 0, 3)
    assert (second.handled, second.failed, second.enqueued) == (0, 0, 0)
    rows = await outbox_rows()
    assert all(row["handled_at"] is not None and row["relayed_at"] is not None for row in rows)
    # The handlers ran here: one message row per booking, and in arq only its send job.
    found = await all_messages()
    assert [m["status"] for m in found] == ["pending"] * 3
    assert sorted(await queued_sends(arq_pool)) == sorted(str(m["id"]) for m in found)
    # One relay pass, one arq job for its three sends.
    assert await arq_pool.zcard("arq:queue") == 1


async def test_concurrent_relays_share_rows_without_duplicates(
    world: World, arq_pool: ArqRedis
) -> None:
    for day in range(2, 8):
        await book(world, days=day)

    results = await asyncio.gather(
        *(relay_outbox(arq_pool, OUTBOX_HANDLERS, batch=2) for _ in range(6))
    )

    assert sum(r.handled for r in results) == 6
    found = await all_messages()
    assert len(found) == 6
    assert sorted(await queued_sends(arq_pool)) == sorted(str(m["id"]) for m in found)


async def test_redis_down_rows_wait_then_are_sent_exactly_once(
    world: World, pipeline: Pipeline, private_redis: PrivateRedis
) -> None:
    pool = await create_pool(RedisSettings.from_dsn(private_redis.url))
    private_redis.stop()
    booking = await book(world)  # the API keeps booking while Redis is down

    result = await relay_outbox(pool, OUTBOX_HANDLERS)

    # The handlers ran, but their send job was refused: the row goes back to the outbox.
    assert (result.handled, result.failed, result.enqueued) == (0, 0, 0)
    assert result.error
    [row] = await outbox_rows()
    assert row["relayed_at"] is None
    assert row["handled_at"] is None
    assert row["last_error"]
    assert row["attempts"] == 0  # a refusal by Redis is not one of the row's tries
    assert pipeline.fake.requests == []
    await pool.aclose()

    private_redis.start()  # back, and empty: it kept nothing
    await pipeline.run_worker(redis_url=private_redis.url)
    await pipeline.run_worker(redis_url=private_redis.url)

    assert len(pipeline.fake.accepted) == 1
    [message] = await messages(UUID(booking["id"]))
    assert message["status"] == "sent"
    [row] = await outbox_rows()
    assert row["relayed_at"] is not None


async def test_worker_stopped_between_outbox_and_send_resumes_exactly_once(
    world: World, pipeline: Pipeline, arq_pool: ArqRedis
) -> None:
    booking = await book(world)
    # The relay runs the event's handler (the message row commits, its send job is
    # queued) and the worker stops before sending.
    await relay_outbox(arq_pool, OUTBOX_HANDLERS)

    [message] = await messages(UUID(booking["id"]))
    assert message["status"] == "pending"
    assert pipeline.fake.requests == []
    assert await Job(f"sms:{message['id']}", arq_pool).status() == JobStatus.queued

    await pipeline.run_worker()
    await pipeline.run_worker()

    assert len(pipeline.fake.accepted) == 1
    assert (await messages(UUID(booking["id"])))[0]["status"] == "sent"


async def test_send_job_lost_with_redis_is_requeued_and_sent_once(
    world: World, pipeline: Pipeline, arq_pool: ArqRedis
) -> None:
    booking = await book(world)
    await relay_outbox(arq_pool, OUTBOX_HANDLERS)
    await arq_pool.flushdb()  # Redis restarted without persistence: every job is gone
    async with db.connection() as conn:  # ...a little while ago
        await conn.execute("UPDATE message SET next_attempt_at = now() - interval '1 minute'")

    await pipeline.run_worker()
    await pipeline.run_worker()

    assert len(pipeline.fake.accepted) == 1
    assert (await messages(UUID(booking["id"])))[0]["status"] == "sent"


async def test_a_send_job_started_by_a_killed_worker_does_not_hold_up_the_requeue(
    world: World, pipeline: Pipeline, arq_pool: ArqRedis
) -> None:
    """A worker killed after arq started a pass's send batch, before it claimed the
    messages: arq keeps that job's id (in progress, then queued again only after
    job_timeout + 10 s). The requeue cron's batch has an id of its own, so it runs now."""
    from booking.notifications.jobs import requeue_messages

    for day in (3, 4):
        await book(world, days=day)
    await relay_outbox(arq_pool, OUTBOX_HANDLERS)
    [stuck] = [job.decode() for job in await arq_pool.zrange("arq:queue", 0, -1)]
    assert stuck.startswith("send_sms_batch:")
    await arq_pool.set(f"arq:in-progress:{stuck}", b"1", px=600_000)  # the dead worker's
    async with db.connection() as conn:  # ...a little while ago
        await conn.execute("UPDATE message SET next_attempt_at = now() - interval '1 minute'")

    assert await requeue_messages({"redis": arq_pool}) == 2  # not refused as a duplicate
    await arq_pool.zrem("arq:queue", stuck)  # the stuck job cannot run yet anyway
    await pipeline.run_worker()

    assert len(pipeline.fake.accepted) == 2
    assert {m["status"] for m in await all_messages()} == {"sent"}


async def test_row_queued_by_the_previous_design_and_lost_is_handled_again_once(
    world: World, pipeline: Pipeline, arq_pool: ArqRedis
) -> None:
    """An earlier version queued one handle_outbox_event job per row; Redis lost it."""
    booking = await book(world)
    async with db.connection() as conn:  # relayed, never handled, the job gone
        await conn.execute("UPDATE outbox SET relayed_at = now(), attempts = 1")
    assert (await relay(arq_pool)).handled == 0  # not yet: the job may just be slow
    async with db.connection() as conn:
        await conn.execute("UPDATE outbox SET relayed_at = now() - interval '10 minutes'")

    assert (await relay(arq_pool)).handled == 1
    await pipeline.run_worker()
    await pipeline.run_worker()

    assert len(pipeline.fake.accepted) == 1
    assert (await messages(UUID(booking["id"])))[0]["status"] == "sent"
    assert (await outbox_rows())[0]["handled_at"] is not None
    async with db.connection() as conn:
        await conn.execute("UPDATE outbox SET relayed_at = now() - interval '10 minutes'")
    assert (await relay(arq_pool)).handled == 0  # handled rows are never replayed


async def test_a_failing_handler_holds_back_only_its_own_row(
    world: World, arq_pool: ArqRedis
) -> None:
    for day in (3, 4, 5):
        await book(world, days=day)
    rows = await outbox_rows()
    bad = rows[1]["id"]

    async def fails_on_one(conn: object, event: OutboxEvent) -> list[FollowUpJob]:
        if event.id == bad:
            raise RuntimeError("handler bug")
        return []

    result = await relay_outbox(arq_pool, (*OUTBOX_HANDLERS, fails_on_one))

    assert (result.handled, result.failed) == (2, 1)
    by_id = {row["id"]: row for row in await outbox_rows()}
    assert by_id[bad]["handled_at"] is None
    assert "handler bug" in str(by_id[bad]["last_error"])
    assert all(by_id[i]["handled_at"] is not None for i in by_id if i != bad)
    # The failing row's own message was rolled back with it; the others' were kept.
    assert len(await all_messages()) == 2


async def test_live_claim_is_not_overtaken_and_a_lapsed_one_is_resent(
    world: World, pipeline: Pipeline, arq_pool: ArqRedis
) -> None:
    booking = await book(world)
    await relay_outbox(arq_pool, OUTBOX_HANDLERS)
    [message] = await messages(UUID(booking["id"]))
    sender = build_sms_sender(pipeline.settings)
    try:
        async with db.connection() as conn:  # a worker claimed it and is mid-call
            await conn.execute(
                "UPDATE message SET status = 'sending', attempts = 1, claimed_until = $1",
                datetime.now(UTC) + timedelta(seconds=60),
            )
        wait = await send_message(message["id"], sender, pipeline.settings)
        assert wait is not None
        assert 50 < wait <= 60
        assert pipeline.fake.requests == []

        async with db.connection() as conn:  # that worker died; its lease ran out
            await conn.execute("UPDATE message SET claimed_until = now() - interval '1 second'")
        assert await send_message(message["id"], sender, pipeline.settings) is None
        assert await send_message(message["id"], sender, pipeline.settings) is None
    finally:
        await sender.aclose()

    assert len(pipeline.fake.accepted) == 1
    [done] = await messages(UUID(booking["id"]))
    assert done["status"] == "sent"
    assert done["attempts"] == 2


async def test_relay_loop_delivers_without_waiting_for_cron(
    world: World, pipeline: Pipeline, arq_pool: ArqRedis
) -> None:
    from booking.outbox.jobs import start_relay_loop, stop_relay_loop

    ctx: dict[str, object] = {
        "redis": arq_pool,
        "outbox_poll_interval": 0.02,
        "outbox_handlers": OUTBOX_HANDLERS,
    }
    await start_relay_loop(ctx)
    try:
        await book(world)
        deadline = time.monotonic() + 5
        # The row is marked handled when its transaction commits and its SMS job is
        # enqueued just after: wait for the job itself (stopping the loop between the
        # two would cancel the enqueue; the message's own sweep would send it later).
        while not await all_messages() or await _sms_job(arq_pool) != JobStatus.queued:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    finally:
        await stop_relay_loop(ctx)
    [row] = await outbox_rows()
    assert row["handled_at"] is not None
    assert await _sms_job(arq_pool) == JobStatus.queued


async def test_relay_helpers_join_only_while_passes_come_back_full(
    world: World, arq_pool: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three loops: while the outbox is (nearly) empty one loop polls alone, so a stream of
    bookings is not split into passes of a row or two; a backlog (full passes) brings the
    other two in, and every row is handled once."""
    from booking.outbox import jobs

    in_flight, most, calls = 0, 0, 0

    async def counted(redis: ArqRedis, handlers: Any, **options: Any) -> RelayResult:
        nonlocal in_flight, most, calls
        in_flight, calls = in_flight + 1, calls + 1
        most = max(most, in_flight)
        try:
            await asyncio.sleep(0.01)  # a pass takes time: overlapping loops would show
            return await relay_outbox(redis, handlers, batch=2, **options)
        finally:
            in_flight -= 1

    monkeypatch.setattr(jobs, "relay_outbox", counted)
    monkeypatch.setattr(jobs, "RELAY_BATCH", 2)  # a pass of two rows is "full"
    ctx: dict[str, object] = {
        "redis": arq_pool,
        "outbox_poll_interval": 0.01,
        "outbox_relay_loops": 3,
        "outbox_handlers": OUTBOX_HANDLERS,
    }
    await jobs.start_relay_loop(ctx)
    await asyncio.sleep(0.3)
    await jobs.stop_relay_loop(ctx)
    idle_calls, idle_most = calls, most
    for day in range(2, 14):  # a backlog: rows committed while no loop runs
        await book(world, days=day)
    await jobs.start_relay_loop(ctx)
    try:
        deadline = time.monotonic() + 10
        while any(row["handled_at"] is None for row in await outbox_rows()):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    finally:
        await jobs.stop_relay_loop(ctx)
    assert idle_calls >= 5  # the first loop kept polling
    assert idle_most == 1  # ... alone
    assert most >= 2  # full passes brought the helpers in
    assert len(await all_messages()) == 12  # each row handled once, one message each


async def test_stopping_the_relay_loops_lets_a_pass_finish_its_transaction(
    world: World, arq_pool: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shutdown waits for the pass in flight (cancelling it inside its BEGIN left the
    connection idle in a transaction, and the pool's close waited for it); a pass that
    outlives the grace is cancelled, and the stop still returns."""
    from booking.outbox import jobs

    entered = asyncio.Event()
    finished: list[bool] = []

    async def slow_pass(redis: ArqRedis, handlers: Any, **options: Any) -> RelayResult:
        async with db.transaction() as conn:
            entered.set()
            await conn.execute("SELECT pg_sleep(0.3)")
        finished.append(True)
        return RelayResult(handled=0, failed=0)

    monkeypatch.setattr(jobs, "relay_outbox", slow_pass)
    ctx: dict[str, object] = {"redis": arq_pool, "outbox_handlers": OUTBOX_HANDLERS}
    await jobs.start_relay_loop(ctx)
    await entered.wait()
    await jobs.stop_relay_loop(ctx)
    assert finished == [True]  # the pass ran to its commit
    async with db.connection() as conn:
        stuck = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%'"
        )
    assert stuck == 0

    entered.clear()
    finished.clear()
    await jobs.start_relay_loop(ctx)
    await entered.wait()
    started = time.monotonic()
    await jobs.stop_relay_loop(ctx, grace=0.05)  # the pass takes longer: cut off
    assert time.monotonic() - started < 0.3
    assert finished == []


async def _sms_job(arq_pool: ArqRedis) -> JobStatus:
    [message] = await all_messages()
    status: JobStatus = await Job(f"sms:{message['id']}", arq_pool).status()
    return status


async def test_relay_reports_a_dead_redis_without_raising(world: World) -> None:
    await book(world)
    client = redis.asyncio.Redis(port=free_port(), socket_connect_timeout=0.5)
    pool = ArqRedis(connection_pool=client.connection_pool)

    result = await relay_outbox(pool, OUTBOX_HANDLERS)

    assert (result.handled, result.error is not None) == (0, True)
    [row] = await outbox_rows()
    assert row["handled_at"] is None  # it waits for Redis
    await pool.aclose()


class _CountingConnection:
    """The relay's connection as the handlers see it, counting the statements they send."""

    def __init__(self, conn: Any, seen: list[str]) -> None:
        self._conn = conn
        self._seen = seen

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._conn, name)
        if name not in ("execute", "fetch", "fetchrow", "fetchval"):
            return attr

        def counted(query: str, *args: Any, **kwargs: Any) -> Any:
            self._seen.append(" ".join(query.split()))
            return attr(query, *args, **kwargs)

        return counted


async def test_a_relay_pass_asks_a_business_s_configuration_once_not_per_row(
    world: World, arq_pool: ArqRedis
) -> None:
    """Webhook endpoints, write-back calendars and marketplace listings are questions
    about the business: a pass of five bookings of one business asks each once, and the
    listing is still marked changed and every booking still gets its SMS, each with its
    own booking's reference."""
    async with db.connection() as conn:
        await conn.execute(
            "INSERT INTO marketplace_listing (business_id, partner_id) VALUES ($1, $2)",
            world.business_id,
            world.partner_id,
        )
    for day in (3, 4, 5, 6, 7):
        await book(world, days=day)
    seen: list[str] = []

    def counting(handler: Handler) -> Handler:
        async def run(conn: Any, event: OutboxEvent) -> list[FollowUpJob]:
            return await handler(cast(Any, _CountingConnection(conn, seen)), event)

        return run

    result = await relay_outbox(arq_pool, [counting(h) for h in OUTBOX_HANDLERS])

    assert (result.handled, result.failed) == (5, 0)
    listing_updates = [q for q in seen if q.startswith("UPDATE marketplace_listing")]
    calendar_questions = [q for q in seen if "FROM calendar_connection" in q]
    webhook_questions = [q for q in seen if "FROM webhook_endpoint" in q]
    assert (len(listing_updates), len(calendar_questions), len(webhook_questions)) == (1, 1, 1)
    # The bookings the SMS need are read together; their messages and reminders are
    # written together just before commit (run_before_commit), not by each row's handler.
    assert len([q for q in seen if "AS customer_name" in q]) == 1
    assert [q for q in seen if q.startswith("INSERT INTO message")] == []
    found = await all_messages()
    assert [m["status"] for m in found] == ["pending"] * 5
    async with db.connection() as conn:
        codes = {
            row["id"]: row["reference_code"]
            for row in await conn.fetch("SELECT id, reference_code FROM booking")
        }
    assert all(codes[m["booking_id"]] in str(m["body"]) for m in found)
    async with db.connection() as conn:
        changed = await conn.fetchval(
            "SELECT feed_changed_at FROM marketplace_listing WHERE business_id = $1",
            world.business_id,
        )
    assert changed is not None
    # A pass of its own asks again: nothing is remembered past its transaction.
    await book(world, days=8)
    seen.clear()
    again = await relay_outbox(arq_pool, [counting(h) for h in OUTBOX_HANDLERS])
    assert again.handled == 1
    assert len([q for q in seen if q.startswith("UPDATE marketplace_listing")]) == 1
