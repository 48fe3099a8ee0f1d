"""Every HTTP request: a request id (the caller's ``X-Request-Id`` when sane, else a new
one, echoed in the answer), one access-log line with the path's tokens redacted, and the
request metrics. A plain ASGI wrapper around the whole app, so 404s and problems from any
layer are counted too."""

from __future__ import annotations

import functools
import time
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Send

from booking.telemetry import metrics
from booking.telemetry.logs import access_logger, redact_text, request_id_from_header

_HEADER = b"x-request-id"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Problem codes that are a booking's outcome (booking.errors), counted whichever route.
_BOOKING_PROBLEMS = {"slot-taken": "conflict", "change-policy": "policy_refused"}
PROBLEM_CODE_KEY = "booking_problem_code"  # set in scope["state"] by the problem mapping


# The labelled children, looked up once per (method, route[, status]): ``labels()`` takes a
# lock and builds a key on every call. Routes are the app's templates, so these stay small.
@functools.cache
def _requests(method: str, route: str, status: int) -> Any:
    return metrics.HTTP_REQUESTS.labels(method, route, str(status))


@functools.cache
def _durations(method: str, route: str) -> Any:
    return metrics.HTTP_DURATION.labels(method, route)


def _is_booking_creation(method: str, route: str) -> bool:
    return method == "POST" and route.endswith(("/bookings", "/holds"))


class RequestTelemetry:
    def __init__(self, app: ASGIApp, *, access_log: bool, metrics: bool) -> None:
        self.app = app
        self.access_log = access_log
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given: str | None = None
        for name, value in scope["headers"]:
            if name == _HEADER:
                given = value.decode("latin-1")
                break
        request_id = request_id_from_header(given)
        status = 500
        raw_id = request_id.encode()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (_HEADER, raw_id)]
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        began = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - began
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = scope.get("path_template") or "unmatched"
            if self.metrics:
                self._count(scope, method, route, status, elapsed)
            if self.access_log:
                access_logger().info(
                    "request",
                    method=method,
                    path=redact_text(scope["path"]),
                    status=status,
                    duration_ms=round(elapsed * 1000, 1),
                )
            structlog.contextvars.reset_contextvars(**tokens)

    @staticmethod
    def _count(scope: Any, method: str, route: str, status: int, elapsed: float) -> None:
        _requests(method, route, status).inc()
        _durations(method, route).observe(elapsed)
        state: dict[str, Any] = scope.get("state") or {}
        outcome = _BOOKING_PROBLEMS.get(state.get(PROBLEM_CODE_KEY, ""))
        if outcome is None and status == 201 and _is_booking_creation(method, route):
            outcome = "created"
        if outcome is not None:
            metrics.BOOKINGS.labels(outcome).inc()
