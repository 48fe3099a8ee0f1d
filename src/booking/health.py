"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get

from booking import db
from booking.problems import problem


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
    summary="PostgreSQL and Redis are reachable",
    security=[{}],  # public: no credentials
)
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(2):
            async with db.connection() as conn:
                await conn.fetchval("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"
        checks["database"] = f"unavailable: {type(exc).__name__}"
    redis = getattr(request.app.state, "redis", None)
    try:
        if redis is None:
            raise ConnectionError("no redis pool")
        async with asyncio.timeout(2):
            await redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # any failure means "not ready"
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    if all(value == "ok" for value in checks.values()):
        return Response({"status": "ready", "checks": checks})
    return problem(
        request,
        503,
        "not-ready",
        "Not ready",
        "A dependency is unreachable.",
        headers={"Retry-After": "2"},
        extra={"checks": checks},
    )
