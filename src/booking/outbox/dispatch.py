"""What happens to a committed outbox event: a registry of handlers.

The relay (outbox/jobs.py) moves committed outbox rows into arq as one
``handle_outbox_event`` job per row (job id ``outbox:<id>``). That job calls
:func:`dispatch` inside a transaction: each handler (the list the worker's settings name,
``booking.worker.OUTBOX_HANDLERS``; nothing registers itself on import) writes its own
rows idempotently (e.g. a message per booking event, a delivery per webhook
endpoint) and returns the follow-up jobs to enqueue after commit, each with a
deterministic job id so a rerun enqueues nothing twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
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


async def dispatch(
    conn: asyncpg.Connection, event: OutboxEvent, handlers: Sequence[Handler]
) -> list[FollowUpJob]:
    """Run ``handlers`` in order (the worker's OUTBOX_HANDLERS) on one event."""
    jobs: list[FollowUpJob] = []
    for handler in handlers:
        jobs.extend(await handler(conn, event))
    return jobs
