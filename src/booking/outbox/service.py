"""Relaying committed outbox rows into arq, and running one event's handlers.

The relay never enqueues inside an open transaction of a *change*: it reads
rows that are already committed (``FOR UPDATE SKIP LOCKED``, so several workers
share the work), enqueues one ``handle_outbox_event`` job per row with the
deterministic id ``outbox:<id>``, and marks ``relayed_at`` in the same
transaction only for rows whose enqueue succeeded. Redis down: the rows wait,
and the next relay sends them. A crash after enqueueing but before the commit
re-enqueues with the same job id, which arq ignores while the job or its result
exists; handlers are idempotent for the rare case past that.

A queued job can also vanish with Redis itself (a Redis restarted without its
data). ``handle_event`` stamps ``handled_at`` in the handlers' transaction, and
the relay enqueues again, under the same id, any row relayed more than
``REDELIVER_AFTER`` ago that no handler has run for (found by the fault drill
in tests/faults/test_redis_outage.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from arq.connections import ArqRedis

from booking import db
from booking.outbox.dispatch import FollowUpJob, Handler, OutboxEvent, dispatch

log = logging.getLogger("booking.outbox")

HANDLE_JOB = "handle_outbox_event"
RELAY_BATCH = 500
# Longer than a job may run (the worker's job_timeout is 60 s) plus arq's retry
# delay, so a job that is merely slow or queued is not relayed twice.
REDELIVER_AFTER = timedelta(minutes=3)
MAX_RELAYS = 20  # a row whose handlers keep failing stops being relayed (last_error says why)
_ENQUEUE_CONCURRENCY = 50


@dataclass(frozen=True, slots=True)
class RelayResult:
    relayed: int
    failed: int
    error: str | None = None


def outbox_job_id(outbox_id: int) -> str:
    return f"outbox:{outbox_id}"


def event_from_row(row: Mapping[str, Any]) -> OutboxEvent:
    payload = row["payload"]
    return OutboxEvent(
        id=row["id"],
        business_id=row["business_id"],
        topic=row["topic"],
        aggregate_id=row["aggregate_id"],
        payload=json.loads(payload) if isinstance(payload, str) else dict(payload),
        created_at=row["created_at"],
    )


async def relay_outbox(
    redis: ArqRedis, *, batch: int = RELAY_BATCH, redeliver_after: timedelta = REDELIVER_AFTER
) -> RelayResult:
    """Move up to ``batch`` committed rows into arq (new ones, and relayed ones whose
    job never ran); never raises for Redis."""
    async with db.transaction() as conn:
        rows = await conn.fetch(
            """
            SELECT id FROM outbox
            WHERE (relayed_at IS NULL AND available_at <= now())
               OR (relayed_at IS NOT NULL AND handled_at IS NULL
                   AND relayed_at < now() - $2::interval AND attempts < $3)
            ORDER BY id LIMIT $1
            FOR UPDATE SKIP LOCKED
            """,
            batch,
            redeliver_after,
            MAX_RELAYS,
        )
        ids = [row["id"] for row in rows]
        done: list[int] = []
        error: BaseException | None = None
        failed_id: int | None = None
        for start in range(0, len(ids), _ENQUEUE_CONCURRENCY):
            chunk = ids[start : start + _ENQUEUE_CONCURRENCY]
            results = await asyncio.gather(
                *(redis.enqueue_job(HANDLE_JOB, i, _job_id=outbox_job_id(i)) for i in chunk),
                return_exceptions=True,
            )
            for outbox_id, result in zip(chunk, results, strict=True):
                if isinstance(result, BaseException):
                    if isinstance(result, asyncio.CancelledError):
                        raise result
                    error, failed_id = error or result, failed_id or outbox_id
                else:
                    done.append(outbox_id)  # None: already queued under that id, also fine
            if error is not None:
                break
        if done:
            await conn.execute(
                "UPDATE outbox SET relayed_at = now(), attempts = attempts + 1 "
                "WHERE id = ANY($1::bigint[])",
                done,
            )
        if failed_id is not None:
            # One row carries the error; the rest just wait. Cheap during a long outage.
            await conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
                failed_id,
                repr(error)[:500],
            )
    if error is not None:
        log.warning("outbox relay: Redis refused (%r); %d rows wait", error, len(ids) - len(done))
    return RelayResult(
        relayed=len(done), failed=len(ids) - len(done), error=None if error is None else repr(error)
    )


async def enqueue_follow_ups(redis: ArqRedis, jobs: Iterable[FollowUpJob]) -> int:
    """Enqueue after commit, each under its deterministic id; how many were new."""
    created = 0
    for job in jobs:
        queued = await redis.enqueue_job(
            job.function,
            *job.args,
            _job_id=job.job_id,
            _defer_until=job.defer_until,
            **job.kwargs,
        )
        created += queued is not None
    return created


async def handle_event(outbox_id: int, handlers: Sequence[Handler]) -> list[FollowUpJob] | None:
    """Run ``handlers`` for one committed outbox row in one transaction (None: no row)."""
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            "SELECT id, business_id, topic, aggregate_id, payload, created_at "
            "FROM outbox WHERE id = $1",
            outbox_id,
        )
        if row is None:
            return None
        jobs = await dispatch(conn, event_from_row(row), handlers)
        await conn.execute("UPDATE outbox SET handled_at = now() WHERE id = $1", outbox_id)
        return jobs
