"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get

from booking import db
from booking.problems import problem
from booking.settings import Settings
from booking.telemetry.endpoint import outbox_state
from booking.telemetry.liveness import heartbeats


@get(
    "/health",
    tags=["operations"],
    summary="The process is alive",
    include_in_schema=True,
    security=[{}],  # public: no credentials
)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/ready",
    tags=["operations"],
    summary="PostgreSQL and Redis are reachable, and the outbox is moving",
    description=(
        "503 when PostgreSQL or Redis is unreachable, or when the oldest committed outbox "
        "row has waited longer than BOOKING_READY_OUTBOX_MAX_AGE_SECONDS (no worker, or "
        "workers that cannot keep up). `checks.workers` says how many workers sent a "
        "heartbeat in the last 30 s (shown, not required: the outbox check is the signal)."
    ),
    security=[{}],  # public: no credentials
)
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    settings: Settings = request.app.state.settings
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(2):
            async with db.connection() as conn:
                await conn.fetchval("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"
        checks["database"] = f"unavailable: {type(exc).__name__}"
    if checks["database"] == "ok":
        checks["outbox"] = await _outbox_check(settings.ready_outbox_max_age_seconds)
    redis = getattr(request.app.state, "redis", None)
    try:
        if redis is None:
            raise ConnectionError("no redis pool")
        async with asyncio.timeout(2):
            await redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # any failure means "not ready"
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    info: dict[str, str] = {}
    if checks["redis"] == "ok":
        info["workers"] = await _workers(redis)
    if all(value == "ok" for value in checks.values()):
        return Response({"status": "ready", "checks": {**checks, **info}})
    failing = "; ".join(f"{name} {value}" for name, value in checks.items() if value != "ok")
    return problem(
        request,
        503,
        "not-ready",
        "Not ready",
        f"Not ready: {failing}.",
        headers={"Retry-After": "2"},
        extra={"checks": {**checks, **info}},
    )


async def _outbox_check(max_age: int) -> str:
    try:
        async with asyncio.timeout(2):
            backlog, oldest = await outbox_state()
    except Exception as exc:  # any failure means "not ready"
        return f"unavailable: {type(exc).__name__}"
    if backlog and oldest > max_age:
        return f"stalled: {backlog} rows, oldest {oldest:.0f} s (limit {max_age} s)"
    return "ok"


async def _workers(redis: Any) -> str:
    try:
        async with asyncio.timeout(2):
            beats = await heartbeats(redis)
    except Exception as exc:  # shown only
        return f"unknown: {type(exc).__name__}"
    return f"{len(beats)} alive" if beats else "none alive"
