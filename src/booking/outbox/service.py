"""The relay: claim committed outbox rows, run their in-database handlers here, then hand
the provider calls to arq.

The relay never enqueues inside an open transaction of a *change*: it reads rows that are
already committed (``FOR UPDATE SKIP LOCKED``, so several workers and several relay loops
share the work) and, in the same transaction, runs every handler the worker's settings
name (``booking.worker.OUTBOX_HANDLERS``) on each row: messages, reminders, offers,
promises, webhook deliveries are rows written idempotently next to ``handled_at``. Only
after that commit are the follow-up jobs (the calls to outside providers: Twilio, partner
webhooks, calendar write-back) enqueued into arq, each under a deterministic job id.

One hop fewer than before (an arq job per outbox row): a row costs one shared transaction
instead of a queue round trip and a transaction of its own.

Failures:
* a handler raises: the batch is rolled back and run again one row per transaction, so
  only the failing row waits (``attempts``, ``last_error``, ``available_at`` backed off);
  after ``MAX_RELAYS`` tries it stops being picked (``last_error`` says why);
* Redis refuses the follow-ups after the commit (down, or full at ``maxmemory``): the rows
  go back to the outbox and are handled again shortly (the handlers are idempotent), so
  their jobs are enqueued as soon as Redis takes them; should even that fail, the rows
  waiting for a provider call are found by their own crons (``requeue_messages`` for SMS,
  ``retry_due_webhooks`` for partner webhooks);
* the worker dies mid-batch: the transaction rolls back, the rows are claimed again.

Rows relayed by an earlier version as ``handle_outbox_event`` jobs and never handled (a
Redis lost with its queue) are picked up again after ``REDELIVER_AFTER``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

import asyncpg
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from booking import db
from booking.outbox.dispatch import (
    FollowUpJob,
    Handler,
    OutboxEvent,
    dispatch,
    run_before_commit,
    transaction_memo,
)

log = logging.getLogger("booking.outbox")

RELAY_BATCH = 50  # rows per handler transaction: short locks, few commits
# Rows queued by the previous design (one arq job per row) that never ran are taken
# back after this long: longer than a job may run plus arq's retry delay.
REDELIVER_AFTER = timedelta(minutes=3)
MAX_RELAYS = 20  # a row whose handlers keep failing stops being picked (last_error says why)
_ENQUEUE_CONCURRENCY = 50
COALESCE_LIMIT = 50  # follow-ups per batch job (one relay pass of SMS)
_COLUMNS = "id, business_id, topic, aggregate_id, payload, created_at"


@dataclass(frozen=True, slots=True)
class RelayResult:
    handled: int  # rows whose handlers ran and committed
    failed: int  # rows whose handlers raised (they wait and are tried again)
    enqueued: int = 0  # follow-up jobs new in arq
    error: str | None = None  # Redis refused the follow-ups (they are recovered by cron)

    @property
    def relayed(self) -> int:
        return self.handled


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


async def _claim(
    conn: asyncpg.Connection, batch: int, redeliver_after: timedelta
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM outbox
        WHERE (relayed_at IS NULL AND available_at <= now() AND attempts < $3)
           OR (relayed_at IS NOT NULL AND handled_at IS NULL
               AND relayed_at < now() - $2::interval AND attempts < $3)
        ORDER BY id LIMIT $1
        FOR UPDATE SKIP LOCKED
        """,
        batch,
        redeliver_after,
        MAX_RELAYS,
    )
    return rows


async def _mark_handled(conn: asyncpg.Connection, ids: list[int]) -> None:
    await conn.execute(
        "UPDATE outbox SET relayed_at = now(), handled_at = now(), attempts = attempts + 1 "
        "WHERE id = ANY($1::bigint[])",
        ids,
    )


class _BatchFailed(Exception):
    pass


RowJobs = dict[int, list[FollowUpJob]]  # outbox id -> the follow-up jobs its handlers returned


async def _handle_batch(
    handlers: Sequence[Handler], batch: int, redeliver_after: timedelta
) -> tuple[list[int], RowJobs]:
    """The fast path: every claimed row's handlers in one transaction."""
    async with db.transaction() as conn:
        rows = await _claim(conn, batch, redeliver_after)
        events = [event_from_row(row) for row in rows]
        with transaction_memo(events):
            return await _handle_claimed(conn, events, handlers)


async def _handle_claimed(
    conn: asyncpg.Connection, events: list[OutboxEvent], handlers: Sequence[Handler]
) -> tuple[list[int], RowJobs]:
    jobs: RowJobs = {}
    try:
        for event in events:
            jobs[event.id] = with_request_id(await dispatch(conn, event, handlers), event)
        await run_before_commit(conn)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise _BatchFailed from exc  # rolls the batch back
    ids = [event.id for event in events]
    if ids:
        await _mark_handled(conn, ids)
    return ids, jobs


async def _handle_one_by_one(
    handlers: Sequence[Handler], batch: int, redeliver_after: timedelta
) -> tuple[list[int], int, RowJobs]:
    """After a failed batch: each row in its own transaction, so one bad row waits alone."""
    async with db.transaction() as conn:
        ids = [row["id"] for row in await _claim(conn, batch, redeliver_after)]
    handled: list[int] = []
    failed = 0
    jobs: RowJobs = {}
    for outbox_id in ids:
        try:
            with transaction_memo():
                handled_now = await _handle_alone(handlers, outbox_id, jobs)
            if handled_now:
                handled.append(outbox_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failed += 1
            log.exception("outbox row %s: a handler failed; it waits", outbox_id)
            async with db.transaction() as conn:
                await conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2, "
                    "available_at = now() + make_interval(secs => least(300, 2 ^ attempts)) "
                    "WHERE id = $1",
                    outbox_id,
                    repr(exc)[:500],
                )
    return handled, failed, jobs


async def _handle_alone(handlers: Sequence[Handler], outbox_id: int, jobs: RowJobs) -> bool:
    """One row's handlers in a transaction of its own; False: another relay has it."""
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM outbox WHERE id = $1 AND handled_at IS NULL "
            "FOR UPDATE SKIP LOCKED",
            outbox_id,
        )
        if row is None:
            return False  # another relay has it, or had it
        event = event_from_row(row)
        jobs[outbox_id] = with_request_id(await dispatch(conn, event, handlers), event)
        await run_before_commit(conn)
        await _mark_handled(conn, [outbox_id])
    return True


async def relay_outbox(
    redis: ArqRedis,
    handlers: Sequence[Handler],
    *,
    batch: int = RELAY_BATCH,
    redeliver_after: timedelta = REDELIVER_AFTER,
) -> RelayResult:
    """Run the handlers of up to ``batch`` committed rows, then enqueue their follow-up
    jobs; never raises for Redis."""
    try:
        ids, jobs = await _handle_batch(handlers, batch, redeliver_after)
        failed = 0
    except _BatchFailed:
        ids, failed, jobs = await _handle_one_by_one(handlers, batch, redeliver_after)
    enqueued, refused, error = await _enqueue_rows(redis, jobs)
    if refused:
        await _hand_back(refused, error)
        return RelayResult(
            handled=len(ids) - len(refused), failed=failed, enqueued=enqueued, error=repr(error)
        )
    return RelayResult(handled=len(ids), failed=failed, enqueued=enqueued)


async def _enqueue_rows(
    redis: ArqRedis, jobs: RowJobs
) -> tuple[int, list[int], BaseException | None]:
    """Enqueue every row's follow-ups; (follow-ups new in arq, rows with a refused job,
    the error)."""
    groups = coalesce(
        [(outbox_id, job) for outbox_id, row_jobs in jobs.items() for job in row_jobs]
    )
    enqueued = 0
    refused: set[int] = set()
    error: BaseException | None = None
    for start in range(0, len(groups), _ENQUEUE_CONCURRENCY):
        chunk = groups[start : start + _ENQUEUE_CONCURRENCY]
        results = await asyncio.gather(
            *(_enqueue(redis, group.job) for group in chunk), return_exceptions=True
        )
        for group, result in zip(chunk, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, RedisError | OSError):
                refused.update(group.keys)
                error = error or result
            elif isinstance(result, BaseException):
                raise result
            elif result:
                enqueued += group.members
    return enqueued, sorted(refused), error


async def _hand_back(ids: list[int], error: BaseException | None) -> None:
    """Redis refused a row's follow-ups (down, or full): the row goes back to the outbox,
    for the next pass (the relay loops back off while Redis refuses). The handlers are
    idempotent - a rerun finds the same message and delivery rows and returns the same jobs
    under the same ids - and a refusal is not one of the row's MAX_RELAYS tries."""
    log.warning("outbox relay: Redis refused follow-up jobs of %d rows (%r)", len(ids), error)
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE outbox SET relayed_at = NULL, handled_at = NULL, "
            "attempts = greatest(0, attempts - 1), last_error = $2 "
            "WHERE id = ANY($1::bigint[])",
            ids,
            repr(error)[:500],
        )


def with_request_id(jobs: list[FollowUpJob], event: OutboxEvent) -> list[FollowUpJob]:
    """Follow-up jobs carry the request id of the change that caused them (logs)."""
    request_id = event.payload.get("request_id")
    if not isinstance(request_id, str) or not jobs:
        return jobs
    return [job if job.request_id else job.traced(request_id) for job in jobs]


async def enqueue_follow_ups(
    redis: ArqRedis, jobs: Iterable[FollowUpJob], *, fresh: str | None = None
) -> int:
    """Enqueue after commit, each under its deterministic id; how many follow-ups were new.

    ``fresh`` (a recovery's run, e.g. the requeue cron's): the batchable follow-ups go as
    batches whose ids also carry it, so they run even where arq still holds a job under
    the plain id - one a killed worker had started, whose in-progress mark keeps it from
    running again for job_timeout + 10 s."""
    groups = coalesce([(None, job) for job in jobs], fresh=fresh)
    created = 0
    for start in range(0, len(groups), _ENQUEUE_CONCURRENCY):
        chunk = groups[start : start + _ENQUEUE_CONCURRENCY]
        results = await asyncio.gather(*(_enqueue(redis, group.job) for group in chunk))
        created += sum(group.members for group, new in zip(chunk, results, strict=True) if new)
    return created


K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class JobGroup(Generic[K]):
    job: FollowUpJob  # what goes to arq
    keys: list[K]  # whose follow-ups it carries (the relay: outbox row ids)
    members: int  # how many follow-ups it carries


def coalesce(
    pairs: Sequence[tuple[K, FollowUpJob]], *, fresh: str | None = None
) -> list[JobGroup[K]]:
    """The follow-ups as arq jobs: those with the same ``batch_as`` and no deferral become
    one job of that name per ``COALESCE_LIMIT`` (its argument: their first arguments, its
    ``request_ids``: each one's request id); a follow-up alone stays itself.

    A batch's job id is a digest of its members' ids, so the same follow-ups enqueued
    again (a relay pass repeated after Redis refused them) are one job; a member in two
    batches is harmless, as every batchable job is idempotent per member (an SMS is
    claimed before it is sent). ``fresh``: see :func:`enqueue_follow_ups` (a follow-up
    alone is then a batch of one, so its id carries it too)."""
    groups: list[JobGroup[K]] = []
    batches: dict[str, list[tuple[K, FollowUpJob]]] = {}
    for key, job in pairs:
        if job.batch_as is None or job.defer_until is not None:
            groups.append(JobGroup(job, [key], 1))
        else:
            batches.setdefault(job.batch_as, []).append((key, job))
    for name, members in batches.items():
        keys_of: dict[str, list[K]] = {}  # job id -> the keys that returned it
        unique: dict[str, FollowUpJob] = {}
        for key, job in members:
            keys_of.setdefault(job.job_id, []).append(key)
            unique.setdefault(job.job_id, job)
        chosen = list(unique.values())
        for start in range(0, len(chosen), COALESCE_LIMIT):
            chunk = chosen[start : start + COALESCE_LIMIT]
            keys = list(dict.fromkeys(key for job in chunk for key in keys_of[job.job_id]))
            if len(chunk) == 1 and fresh is None:
                groups.append(JobGroup(chunk[0], keys, 1))
                continue
            names = sorted(job.job_id for job in chunk) + ([f"fresh:{fresh}"] if fresh else [])
            digest = hashlib.sha1("\n".join(names).encode(), usedforsecurity=False).hexdigest()[:24]
            request_ids = {job.args[0]: job.request_id for job in chunk if job.request_id}
            batch = FollowUpJob(
                function=name,
                job_id=f"{name}:{digest}",
                args=([job.args[0] for job in chunk],),
                kwargs={"request_ids": request_ids} if request_ids else {},
            )
            groups.append(JobGroup(batch, keys, len(chunk)))
    return groups


async def _enqueue(redis: ArqRedis, job: FollowUpJob) -> bool:
    kwargs = dict(job.kwargs)
    if job.request_id:
        kwargs["request_id"] = job.request_id
    queued = await redis.enqueue_job(
        job.function, *job.args, _job_id=job.job_id, _defer_until=job.defer_until, **kwargs
    )
    return queued is not None


async def handle_event(outbox_id: int, handlers: Sequence[Handler]) -> list[FollowUpJob] | None:
    """Run ``handlers`` for one committed outbox row in one transaction (None: no row)."""
    with transaction_memo():
        async with db.transaction() as conn:
            row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM outbox WHERE id = $1", outbox_id)
            if row is None:
                return None
            event = event_from_row(row)
            jobs = with_request_id(await dispatch(conn, event, handlers), event)
            await run_before_commit(conn)
            await conn.execute(
                "UPDATE outbox SET handled_at = now(), relayed_at = coalesce(relayed_at, now()) "
                "WHERE id = $1",
                outbox_id,
            )
            return jobs
