"""The worker's side of the outbox: fast relay loops, the cron safety net, and the
adapter for jobs queued by the previous design."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
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


async def _relay_loop(
    redis: ArqRedis, handlers: Sequence[Handler], interval: float, redeliver_after: timedelta
) -> None:
    delay = interval
    while True:
        result: RelayResult | None
        try:
            result = await relay_outbox(redis, handlers, redeliver_after=redeliver_after)
        except Exception:  # the loop must outlive a database blip
            log.exception("outbox relay loop failed; backing off")
            result = None
        if result is not None and result.error is None and not result.failed:
            delay = interval
            if result.handled >= RELAY_BATCH:
                continue  # more waiting: no sleep
        else:
            delay = min(MAX_POLL_BACKOFF, max(delay, 0.1) * 2)
        await asyncio.sleep(delay)


async def start_relay_loop(ctx: dict[str, Any]) -> None:
    """Worker start-up: handle new rows within ``outbox_poll_interval`` (0 disables)."""
    interval = float(ctx.get("outbox_poll_interval", DEFAULT_POLL_INTERVAL))
    loops = int(ctx.get("outbox_relay_loops", DEFAULT_RELAY_LOOPS))
    if interval > 0:
        ctx[_TASKS_KEY] = [
            asyncio.create_task(
                _relay_loop(ctx["redis"], _handlers(ctx), interval, _redeliver_after(ctx))
            )
            for _ in range(max(1, loops))
        ]


async def stop_relay_loop(ctx: dict[str, Any]) -> None:
    tasks: list[asyncio.Task[None]] = ctx.pop(_TASKS_KEY, [])
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
