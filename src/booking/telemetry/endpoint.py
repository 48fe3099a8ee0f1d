"""``GET /metrics`` (Prometheus text format) for operators only, and the shared-state
gauges it reads when scraped: outbox backlog and age, promises, worker heartbeats, pool.

Who may read it: a bearer of ``BOOKING_METRICS_TOKEN`` when one is set; without a token,
only callers on loopback (a Prometheus beside the API, or a sidecar). Anyone else gets the
same 404 as an unknown path, so the endpoint does not advertise itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from booking import db
from booking.access.tokens import same_secret
from booking.outbox.service import MAX_RELAYS
from booking.settings import Settings
from booking.telemetry import metrics
from booking.telemetry.liveness import heartbeats

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

# Committed rows whose handlers have not run (rows given up after MAX_RELAYS tries are
# left to their last_error); both partial indexes of the outbox serve it.
OUTBOX_STATE = f"""
    SELECT count(*) AS backlog,
           coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_age
    FROM outbox
    WHERE (relayed_at IS NULL OR (relayed_at IS NOT NULL AND handled_at IS NULL))
      AND attempts < {MAX_RELAYS}
"""


def operator_allowed(request: Request[Any, Any, Any], settings: Settings) -> bool:
    if settings.metrics_token:
        given = request.headers.get("authorization", "")
        expected = f"Bearer {settings.metrics_token}"
        return same_secret(given, expected)
    client = request.client
    return client is not None and client.host in _LOOPBACK


async def outbox_state() -> tuple[int, float]:
    async with db.connection() as conn:
        row = await conn.fetchrow(OUTBOX_STATE)
    assert row is not None
    return int(row["backlog"]), float(row["oldest_age"])


async def refresh_shared_gauges(redis: Any) -> None:
    async with asyncio.timeout(2):
        backlog, oldest = await outbox_state()
        metrics.OUTBOX_BACKLOG.set(backlog)
        metrics.OUTBOX_OLDEST_AGE.set(oldest)
        async with db.connection() as conn:
            for row in await conn.fetch("SELECT status, count(*) AS n FROM promise GROUP BY 1"):
                metrics.PROMISES.labels(row["status"]).set(row["n"])
    pool = db.engine().pool
    if pool is not None:
        size, idle = pool.get_size(), pool.get_idle_size()
        metrics.DB_POOL.labels("in_use").set(size - idle)
        metrics.DB_POOL.labels("idle").set(idle)
        metrics.DB_POOL.labels("max").set(pool.get_max_size())
    if redis is not None:
        async with asyncio.timeout(2):
            beats = await heartbeats(redis)
        metrics.WORKERS_ALIVE.set(len(beats))
        metrics.WORKER_HEARTBEAT_AGE.set(min(beats.values()) if beats else float("inf"))


@get("/metrics", include_in_schema=False, security=[{}])
async def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    settings: Settings = request.app.state.settings
    if not settings.metrics_enabled or not operator_allowed(request, settings):
        raise NotFoundException()
    # A scrape still answers with what this process knows when the database is away.
    with contextlib.suppress(Exception):
        await refresh_shared_gauges(getattr(request.app.state, "redis", None))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
