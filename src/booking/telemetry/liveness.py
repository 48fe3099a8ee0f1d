"""Worker liveness: each worker writes a heartbeat into Redis (a key with a TTL); the API
reads them for /ready and /metrics. A worker that died, hung, or cannot write to Redis
(down, or full at maxmemory) stops refreshing its key."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger("booking.worker")

HEARTBEAT_PREFIX = "booking:worker:heartbeat:"
HEARTBEAT_EVERY = 5.0  # seconds
HEARTBEAT_TTL = 30  # seconds: a worker silent this long is gone
_TASK_KEY = "heartbeat_task"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def _beat(redis: Any, key: str) -> None:
    while True:
        try:
            await redis.set(key, f"{time.time():.3f}", ex=HEARTBEAT_TTL)
        except (RedisError, OSError) as exc:
            log.warning("worker heartbeat not written: %r", exc)
        await asyncio.sleep(HEARTBEAT_EVERY)


async def start_heartbeat(ctx: dict[str, Any]) -> None:
    ctx[_TASK_KEY] = asyncio.create_task(_beat(ctx["redis"], HEARTBEAT_PREFIX + worker_name()))


async def stop_heartbeat(ctx: dict[str, Any]) -> None:
    task: asyncio.Task[None] | None = ctx.pop(_TASK_KEY, None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def heartbeats(redis: Any) -> dict[str, float]:
    """Live workers -> seconds since their last heartbeat."""
    now = time.time()
    beats: dict[str, float] = {}
    async for raw in redis.scan_iter(match=HEARTBEAT_PREFIX + "*", count=100):
        value = await redis.get(raw)
        if value is not None:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            beats[name.removeprefix(HEARTBEAT_PREFIX)] = max(0.0, now - float(value))
    return beats
