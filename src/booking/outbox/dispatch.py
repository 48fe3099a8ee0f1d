"""What happens to a committed outbox event: a registry of handlers.

The relay (outbox/jobs.py) moves committed outbox rows into arq as one
``handle_outbox_event`` job per row (job id ``outbox:<id>``). That job calls
:func:`dispatch` inside a transaction: each registered handler writes its own
rows idempotently (e.g. a message per booking event, a delivery per webhook
endpoint) and returns the follow-up jobs to enqueue after commit, each with a
deterministic job id so a rerun enqueues nothing twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: int
    business_id: UUID | None
    topic: str
    aggregate_id: UUID | None
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FollowUpJob:
    function: str
    job_id: str
    args: tuple[Any, ...] = ()
    defer_until: datetime | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[asyncpg.Connection, OutboxEvent], Awaitable[list[FollowUpJob]]]
_HANDLERS: dict[str, Handler] = {}


def outbox_handler(name: str) -> Callable[[Handler], Handler]:
    """Register ``fn`` under ``name`` (registering the same name again replaces it)."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[name] = fn
        return fn

    return register


def handlers() -> dict[str, Handler]:
    return dict(_HANDLERS)


async def dispatch(conn: asyncpg.Connection, event: OutboxEvent) -> list[FollowUpJob]:
    jobs: list[FollowUpJob] = []
    for handler in _HANDLERS.values():
        jobs.extend(await handler(conn, event))
    return jobs
