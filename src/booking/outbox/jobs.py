"""The worker's side of the outbox: fast relay loops, the cron safety net, and the
adapter for jobs queued by the previous design."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from arq import Retry
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from booking.outbox.dispatch import Handler
from booking.outbox.service import (
    REDELIVER_AFTER,
    RELAY_BATCH,
    RelayResult,
    enqueue_follow_ups,
    handle_event,
    relay_outbox,
)

log = logging.getLogger("booking.outbox")

DEFAULT_POLL_INTERVAL = 0.02  # seconds between relay passes when the outbox is empty
DEFAULT_RELAY_LOOPS = 3  # concurrent relay loops per worker (SKIP LOCKED shares the rows)
MAX_POLL_BACKOFF = 5.0
STOP_GRACE = 5.0  # seconds a relay pass may take to finish at shutdown (of SHUTDOWN_TIMEOUT)
_TASKS_KEY = "outbox_relay_tasks"


def _redeliver_after(ctx: dict[str, Any]) -> timedelta:
    """How long a row queued by the previous design may wait before it is taken back."""
    configured = ctx.get("outbox_redeliver_after")
    return configured if isinstance(configured, timedelta) else REDELIVER_AFTER


def _handlers(ctx: dict[str, Any]) -> Sequence[Handler]:
    handlers: Sequence[Handler] = ctx["outbox_handlers"]
    return handlers


async def relay_outbox_job(ctx: dict[str, Any]) -> int:
    """Cron: handle committed outbox rows (the safety net under the poll loops)."""
    total = 0
    while True:
        result = await relay_outbox(
            ctx["redis"], _handlers(ctx), redeliver_after=_redeliver_after(ctx)
        )
        total += result.handled
        if result.failed or result.handled < RELAY_BATCH:
            return total


async def handle_outbox_event(ctx: dict[str, Any], outbox_id: int) -> int:
    """A job queued by the previous design (one per row): the same handlers, idempotent."""
    jobs = await handle_event(outbox_id, _handlers(ctx))
    if not jobs:
        return 0
    try:
        return await enqueue_follow_ups(ctx["redis"], jobs)
    except (RedisError, OSError) as exc:
        raise Retry(defer=5) from exc


@dataclass(slots=True)
class _Loops:
    """The relay loops of one worker and what they share."""

    backlog: asyncio.Event = field(default_factory=asyncio.Event)  # the last pass was full
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def _until(events: Sequence[asyncio.Event], seconds: float | None = None) -> None:
    """Until any of ``events`` is set, or ``seconds`` have passed."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _relay_loop(
    redis: ArqRedis,
    handlers: Sequence[Handler],
    interval: float,
    redeliver_after: timedelta,
    loops: _Loops,
    helper: bool = False,
) -> None:
    """One relay loop, until ``loops.stopping`` (checked between passes, so a pass is
    never cut off). The first loop polls every ``interval``; the helpers wait until a
    pass comes back full (a backlog) and help only while passes do, so an idle worker
    polls once per interval, not once per loop."""
    delay = interval
    while not loops.stopping.is_set():
        if helper and not loops.backlog.is_set():
            await _until([loops.backlog, loops.stopping])
            continue
        result: RelayResult | None
        try:
            result = await relay_outbox(redis, handlers, redeliver_after=redeliver_after)
        except Exception:  # the loop must outlive a database blip
            log.exception("outbox relay loop failed; backing off")
            result = None
        if result is not None and result.error is None and not result.failed:
            delay = interval
            if result.handled >= RELAY_BATCH:
                loops.backlog.set()
                continue  # more waiting: no sleep
            loops.backlog.clear()
        else:
            delay = min(MAX_POLL_BACKOFF, max(delay, 0.1) * 2)
        await _until([loops.stopping], delay)


async def start_relay_loop(ctx: dict[str, Any]) -> None:
    """Worker start-up: handle new rows within ``outbox_poll_interval`` (0 disables);
    ``outbox_relay_loops`` loops drain a backlog together."""
    interval = float(ctx.get("outbox_poll_interval", DEFAULT_POLL_INTERVAL))
    count = int(ctx.get("outbox_relay_loops", DEFAULT_RELAY_LOOPS))
    if interval > 0:
        loops = _Loops()
        loops.tasks = [
            asyncio.create_task(
                _relay_loop(
                    ctx["redis"],
                    _handlers(ctx),
                    interval,
                    _redeliver_after(ctx),
                    loops,
                    helper=i > 0,
                )
            )
            for i in range(max(1, count))
        ]
        ctx[_TASKS_KEY] = loops


async def stop_relay_loop(ctx: dict[str, Any], grace: float = STOP_GRACE) -> None:
    """Let each loop finish its pass, then stop it; a pass still running after ``grace``
    seconds (a database that stopped answering) is cancelled. Cancelling a loop at once
    could cut a pass inside its BEGIN and leave the connection checked out and idle in
    a transaction, so the pool's close at shutdown waited for it forever."""
    loops: _Loops | None = ctx.pop(_TASKS_KEY, None)
    if loops is None:
        return
    loops.stopping.set()
    _, late = await asyncio.wait(loops.tasks, timeout=grace)
    for task in late:
        task.cancel()
    for task in loops.tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
