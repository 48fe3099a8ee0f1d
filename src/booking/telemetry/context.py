"""The request id of the request (or job) in flight, as bound to the log context."""

from __future__ import annotations

from typing import Any

from structlog.contextvars import get_contextvars


def current_request_id() -> str | None:
    value = get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


def traced_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """An outbox payload carrying the request id that caused it (the relay passes it on
    to every job the row causes; partner webhooks never show it)."""
    request_id = current_request_id()
    if request_id is not None:
        payload["request_id"] = request_id
    return payload
