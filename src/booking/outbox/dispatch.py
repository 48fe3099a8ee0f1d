"""What happens to a committed outbox event: the handlers' contract.

The relay (outbox/service.py, run by the worker) claims committed outbox rows and calls
:func:`dispatch` on each inside its transaction: each handler (the list the worker's
settings name, ``booking.worker.OUTBOX_HANDLERS``; nothing registers itself on import)
writes its own rows idempotently (e.g. a message per booking event, a delivery per
webhook endpoint) and returns the follow-up jobs - calls to outside providers - to
enqueue into arq after commit, each with a deterministic job id so a rerun enqueues
nothing twice.

A relay pass runs up to 50 rows in one transaction, most of them of one business; a
handler's per-business question that is the same for each of them (does this business
have write-back calendars, webhook endpoints, marketplace listings?) is asked once per
transaction through :func:`once_per_transaction`, not once per row, and work that
can be done for all rows at once (a booking's reminders) is handed to
:func:`before_commit`: a round trip to PostgreSQL is most of what a row costs the worker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar
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
    # The request that caused it (X-Request-Id), passed to the job as ``request_id`` and
    # bound to its log lines by the worker (booking.telemetry.jobs); never in job_id.
    request_id: str | None = None
    # The name of a job that takes a list of this job's first argument: follow-ups with
    # the same ``batch_as`` enqueued together (a relay pass) go to arq as one such job
    # (outbox.service.coalesce); None: always a job of its own.
    batch_as: str | None = None

    def traced(self, request_id: str) -> FollowUpJob:
        return replace(self, request_id=request_id)


Handler = Callable[[asyncpg.Connection, OutboxEvent], Awaitable[list[FollowUpJob]]]


async def dispatch(
    conn: asyncpg.Connection, event: OutboxEvent, handlers: Sequence[Handler]
) -> list[FollowUpJob]:
    """Run ``handlers`` in order (the worker's OUTBOX_HANDLERS) on one event."""
    jobs: list[FollowUpJob] = []
    for handler in handlers:
        jobs.extend(await handler(conn, event))
    return jobs


T = TypeVar("T")

Flush = Callable[[asyncpg.Connection, list[Any]], Awaitable[None]]


@dataclass(slots=True)
class _Scope:
    """One handler transaction (a relay pass, or one row's retry): the events it handles,
    the answers of :func:`once_per_transaction`, the work of :func:`before_commit`."""

    events: Sequence[OutboxEvent]
    memo: dict[Hashable, Any] = field(default_factory=dict)
    at_end: dict[Flush, list[Any]] = field(default_factory=dict)


# Set by :func:`transaction_memo` around a handler transaction, so nothing outlives the
# transaction that read it (a rolled-back batch's answers are not reused by its rows'
# own transactions).
_SCOPE: ContextVar[_Scope | None] = ContextVar("outbox_transaction", default=None)


@contextmanager
def transaction_memo(events: Sequence[OutboxEvent] = ()) -> Iterator[None]:
    """Handlers run inside share the answers of :func:`once_per_transaction` and see the
    ``events`` the transaction handles (:func:`transaction_events`)."""
    token = _SCOPE.set(_Scope(events))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def transaction_events() -> Sequence[OutboxEvent]:
    """Every event the current handler transaction handles (a relay pass's rows), so a
    handler can read what all of them need in one statement; empty outside one."""
    scope = _SCOPE.get()
    return () if scope is None else scope.events


async def once_per_transaction(key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
    """``compute()``'s answer for ``key``, computed once per handler transaction (every
    call outside one computes it). Only for answers that are the same for every row of
    the transaction: a statement that sets ``now()`` (the transaction's time), or a read
    of configuration that a concurrent change may alter just before or just after the
    transaction alike."""
    scope = _SCOPE.get()
    if scope is None:
        return await compute()
    if key not in scope.memo:
        scope.memo[key] = await compute()
    value: T = scope.memo[key]
    return value


async def before_commit(conn: asyncpg.Connection, flush: Flush, item: Any) -> None:
    """Have ``flush(conn, items)`` run once, with every item handed to it in this handler
    transaction, just before the transaction commits (the relay calls
    :func:`run_before_commit`); outside one it runs now for ``item`` alone. For work
    that no later handler of the transaction reads back."""
    scope = _SCOPE.get()
    if scope is None:
        await flush(conn, [item])
        return
    scope.at_end.setdefault(flush, []).append(item)


async def run_before_commit(conn: asyncpg.Connection) -> None:
    """Run the work handed to :func:`before_commit`; the relay calls it last, inside the
    transaction, so a failure rolls the whole transaction back like a handler's."""
    scope = _SCOPE.get()
    while scope is not None and scope.at_end:
        flush = next(iter(scope.at_end))
        await flush(conn, scope.at_end.pop(flush))
