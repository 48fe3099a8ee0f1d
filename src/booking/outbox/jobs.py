"""arq adapters for the outbox: the relay (cron plus a fast poll loop) and the event job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

from arq import Retry
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from booking.outbox.service import (
    REDELIVER_AFTER,
    RELAY_BATCH,
    enqueue_follow_ups,
    handle_event,
    relay_outbox,
)

log = logging.getLogger("booking.outbox")

DEFAULT_POLL_INTERVAL = 0.05  # seconds between relay passes when the outbox is empty
MAX_POLL_BACKOFF = 5.0
_TASK_KEY = "outbox_relay_task"


def _redeliver_after(ctx: dict[str, Any]) -> timedelta:
    """How long a relayed row may wait for its job before it is relayed again."""
    configured = ctx.get("outbox_redeliver_after")
    return configured if isinstance(configured, timedelta) else REDELIVER_AFTER


async def relay_outbox_job(ctx: dict[str, Any]) -> int:
    """Cron: relay committed outbox rows (the safety net under the poll loop)."""
    total = 0
    while True:
        result = await relay_outbox(ctx["redis"], redeliver_after=_redeliver_after(ctx))
        total += result.relayed
        if result.failed or result.relayed < RELAY_BATCH:
            return total


async def handle_outbox_event(ctx: dict[str, Any], outbox_id: int) -> int:
    """Run the handlers of one outbox row, then enqueue their follow-up jobs after commit."""
    jobs = await handle_event(outbox_id, ctx["outbox_handlers"])
    if not jobs:
        return 0
    try:
        return await enqueue_follow_ups(ctx["redis"], jobs)
    except (RedisError, OSError) as exc:
        # Handlers are idempotent: running again re-finds the same rows and jobs.
        raise Retry(defer=5) from exc


async def _relay_loop(redis: ArqRedis, interval: float, redeliver_after: timedelta) -> None:
    delay = interval
    while True:
        try:
            result = await relay_outbox(redis, redeliver_after=redeliver_after)
        except Exception:  # the loop must outlive a database blip
            log.exception("outbox relay loop failed; backing off")
            result = None
        if result is not None and not result.failed:
            delay = interval
            if result.relayed >= RELAY_BATCH:
                continue  # more waiting: no sleep
        else:
            delay = min(MAX_POLL_BACKOFF, max(delay, 0.1) * 2)
        await asyncio.sleep(delay)


async def start_relay_loop(ctx: dict[str, Any]) -> None:
    """Worker start-up: relay new rows within ``outbox_poll_interval`` (0 disables)."""
    interval = float(ctx.get("outbox_poll_interval", DEFAULT_POLL_INTERVAL))
    if interval > 0:
        ctx[_TASK_KEY] = asyncio.create_task(
            _relay_loop(ctx["redis"], interval, _redeliver_after(ctx))
        )


async def stop_relay_loop(ctx: dict[str, Any]) -> None:
    task: asyncio.Task[None] | None = ctx.pop(_TASK_KEY, None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
