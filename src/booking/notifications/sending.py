"""Sending queued SMS: claim, call the provider, record - one message or a batch.

A message is sent at most once per claim. Sending is two short statements around the
provider call:

1. claim: ``pending`` -> ``sending`` with ``claimed_until = now() + lease``;
2. record: ``sent`` with the provider's sid, or back to ``pending`` with a backoff
   (retryable error), or ``failed`` (permanent error), all with the error code on the row.

The crash window is between the provider accepting and step 2. A rerun that finds a live
claim waits for it to lapse; after the lease it sends again. That is at-least-once: a
worker killed in the middle of a Twilio call can cause one duplicate per message in
flight, never a lost message (see docs/notifications.md).

:func:`send_batch` is the same protocol for many messages at once (the relay's sends,
issue 17): one claim statement for every due message, the provider calls concurrently,
and the successes recorded together as they come back, so a batch costs a few database
round trips and one arq job instead of five round trips and a job per message.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import structlog

from booking import db
from booking.notifications.delivery import FINAL_STATUSES, MESSAGE_EVENT_COLUMNS, emit_final_status
from booking.notifications.service import OPTED_OUT, render_link, status_callback_url
from booking.notifications.sms import SentSms, SmsSender, SmsSendError
from booking.settings import Settings
from booking.telemetry import metrics

events = structlog.get_logger("booking.notifications")

MAX_ATTEMPTS = 8
DEFAULT_BACKOFF_BASE = 5.0  # seconds; doubled each attempt
MAX_BACKOFF = 900.0
DEFAULT_LEASE = timedelta(seconds=90)  # > job timeout: a live attempt is never overtaken


@dataclass(frozen=True, slots=True)
class SendPolicy:
    backoff_base: float = DEFAULT_BACKOFF_BASE
    max_attempts: int = MAX_ATTEMPTS
    lease: timedelta = DEFAULT_LEASE


def backoff_seconds(attempt: int, base: float, retry_after: float | None) -> float:
    """Exponential with a little jitter, never sooner than the provider's Retry-After."""
    delay: float = min(MAX_BACKOFF, base * 2 ** max(0, attempt - 1)) * random.uniform(1.0, 1.2)
    return max(delay, retry_after or 0.0)


async def send_message(
    message_id: UUID, sender: SmsSender, settings: Settings, policy: SendPolicy | None = None
) -> float | None:
    """Send one message at most once per claim; seconds to wait before trying again, or None.

    None means there is nothing more to do (sent, failed for good, skipped, unknown).
    """
    waits = await send_batch([message_id], sender, settings, policy)
    return waits.get(message_id)


async def send_batch(
    message_ids: Iterable[UUID],
    sender: SmsSender,
    settings: Settings,
    policy: SendPolicy | None = None,
    request_ids: Mapping[UUID, str] | None = None,
) -> dict[UUID, float]:
    """Send each message at most once per claim; {message id: seconds to wait} for those
    to try again later (a retryable failure, a live claim, a backoff not yet over).

    One statement claims every due message; the provider calls run concurrently and the
    successes are recorded together as they come back (:class:`_SentRecorder`). Each
    message's log lines carry the request id that caused it (``request_ids``).
    """
    rules = policy or SendPolicy()
    wanted = list(dict.fromkeys(message_ids))
    # The common case in one statement: pending messages that are due, whose customer has
    # not said STOP, are claimed; anything else takes the careful path, one by one.
    claimed = {row["id"]: row for row in await _claim_due(wanted, rules.lease)}
    waits: dict[UUID, float] = {}
    for message_id in wanted:
        if message_id not in claimed:
            outcome = await _claim_carefully(message_id, rules)
            if isinstance(outcome, tuple):
                claimed[message_id] = outcome[0]
            elif outcome is not None:
                waits[message_id] = outcome
    recorder = _SentRecorder(sender.name)
    traces = request_ids or {}

    async def one(row: asyncpg.Record) -> None:
        message_id: UUID = row["id"]
        trace = traces.get(message_id)
        context = {"request_id": trace} if trace else {}
        with structlog.contextvars.bound_contextvars(**context):
            body = render_link(row["body"], row["booking_id"], settings)
            try:
                sent = await sender.send(
                    to=row["to_phone"], body=body, status_callback=status_callback_url(settings)
                )
            except SmsSendError as exc:
                wait = await _record_failure(message_id, row["attempts"], exc, rules)
                if wait is not None:
                    waits[message_id] = wait
                return
            await recorder.record(message_id, sent)
            events.info(
                "sms sent",
                message_id=str(message_id),
                attempt=row["attempts"],
                provider=sender.name,
            )

    if len(claimed) == 1:
        await one(next(iter(claimed.values())))
    else:
        # Every call finishes (sent and recorded, or its failure recorded) before the job
        # ends; the first error is raised after.
        results = await asyncio.gather(
            *(one(row) for row in claimed.values()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
    return waits


class _SentRecorder:
    """Writes ``sent`` for messages as their provider calls return: the first at once, the
    ones that return while a write is running in the next write, so a message accepted by
    the provider is recorded within about one statement's time, whatever the batch size."""

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._waiting: list[tuple[UUID, SentSms, asyncio.Future[None]]] = []
        self._lock = asyncio.Lock()

    async def record(self, message_id: UUID, sent: SentSms) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((message_id, sent, done))
        async with self._lock:
            if not done.done():
                taken, self._waiting = self._waiting, []
                try:
                    await _record_sent(self._provider, [(i, s) for i, s, _ in taken])
                except BaseException as exc:
                    for _, _, future in taken:
                        if not future.done():
                            future.set_exception(exc)
                    raise
                for _, _, future in taken:
                    if not future.done():
                        future.set_result(None)
        await done


async def _record_sent(provider: str, sent: list[tuple[UUID, SentSms]]) -> None:
    async with db.connection() as conn:
        await conn.execute(
            """
            UPDATE message m SET status = 'sent', provider = $1, provider_sid = s.sid,
                provider_status = s.status, sent_at = now(), claimed_until = NULL,
                error_code = NULL, error_message = NULL, updated_at = now()
            FROM unnest($2::uuid[], $3::text[], $4::text[]) AS s(id, sid, status)
            WHERE m.id = s.id
            """,
            provider,
            [message_id for message_id, _ in sent],
            [item.provider_sid for _, item in sent],
            [item.status for _, item in sent],
        )
    metrics.SMS.labels("sent", "").inc(len(sent))


async def _claim_due(message_ids: list[UUID], lease: timedelta) -> list[asyncpg.Record]:
    async with db.connection() as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            """
            UPDATE message m SET status = 'sending', attempts = m.attempts + 1,
                claimed_until = now() + $2::interval, updated_at = now()
            WHERE m.id = ANY($1::uuid[]) AND m.status = 'pending'
              AND m.next_attempt_at <= now() + interval '1 second'
              AND NOT EXISTS (SELECT 1 FROM customer c
                              WHERE c.id = m.customer_id AND c.sms_consent IS FALSE)
            RETURNING m.id, m.attempts, m.to_phone, m.body, m.booking_id
            """,
            message_ids,
            lease,
        )
    return rows


async def _claim_carefully(
    message_id: UUID, rules: SendPolicy
) -> float | tuple[asyncpg.Record] | None:
    """A live claim, a backoff, an opt-out or nothing to send: the wait or None; else the
    claimed row (a lapsed claim taken over)."""
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            """
            SELECT m.id, m.status, m.to_phone, m.body, m.booking_id, m.attempts,
                   m.next_attempt_at, m.claimed_until, c.sms_consent
            FROM message m LEFT JOIN customer c ON c.id = m.customer_id
            WHERE m.id = $1 FOR UPDATE OF m
            """,
            message_id,
        )
        if row is None or row["status"] not in ("pending", "sending"):
            return None
        now = datetime.now(UTC)
        claimed_until: datetime | None = row["claimed_until"]
        next_attempt_at: datetime = row["next_attempt_at"]
        if row["status"] == "sending" and claimed_until is not None and claimed_until > now:
            return (claimed_until - now).total_seconds()  # an attempt may be in flight
        if row["status"] == "pending" and next_attempt_at > now + timedelta(seconds=1):
            return (next_attempt_at - now).total_seconds()
        if row["sms_consent"] is False:
            await conn.execute(
                "UPDATE message SET status = 'skipped', error_message = $2, claimed_until = NULL,"
                " updated_at = now() WHERE id = $1",
                message_id,
                OPTED_OUT,
            )
            metrics.SMS.labels("skipped", "").inc()
            return None
        claimed = await conn.fetchrow(
            "UPDATE message SET status = 'sending', attempts = attempts + 1, claimed_until = $2, "
            "updated_at = now() WHERE id = $1 "
            "RETURNING id, attempts, to_phone, body, booking_id",
            message_id,
            now + rules.lease,
        )
        assert claimed is not None
        return (claimed,)


async def _record_failure(
    message_id: UUID, attempt: int, exc: SmsSendError, rules: SendPolicy
) -> float | None:
    retry = exc.retryable and attempt < rules.max_attempts
    delay = backoff_seconds(attempt, rules.backoff_base, exc.retry_after) if retry else None
    async with db.transaction() as conn:
        before = await conn.fetchval(
            "SELECT status FROM message WHERE id = $1 FOR UPDATE", message_id
        )
        failed = await conn.fetchrow(
            f"""
            UPDATE message SET status = $2, error_code = $3, error_message = $4,
                next_attempt_at = now() + make_interval(secs => $5), claimed_until = NULL,
                updated_at = now()
            WHERE id = $1 RETURNING customer_id, {MESSAGE_EVENT_COLUMNS}
            """,
            message_id,
            "pending" if retry else "failed",
            exc.code if exc.code is not None else exc.http_status,
            exc.message[:500],
            delay or 0.0,
        )
        assert failed is not None
        customer_id = failed["customer_id"]
        if not retry and before not in FINAL_STATUSES:
            await emit_final_status(conn, failed)  # Twilio refused it: it will never arrive
        if exc.opted_out and customer_id is not None:
            # Twilio knows the number said STOP: remember it so nothing else is tried.
            await conn.execute(
                "UPDATE customer SET sms_consent = false WHERE phone = "
                "(SELECT phone FROM customer WHERE id = $1)",
                customer_id,
            )
    code = exc.code if exc.code is not None else exc.http_status
    metrics.SMS.labels("retry" if retry else "failed", str(code or "")).inc()
    events.warning(
        "sms attempt failed",
        message_id=str(message_id),
        attempt=attempt,
        error_code=code,
        retry_in=delay,
    )
    return delay


async def messages_due_for_requeue(limit: int = 500, grace_seconds: float = 10.0) -> list[UUID]:
    """Messages that should be sending but may have lost their job (Redis outage, crash)."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            """
            SELECT id FROM message
            WHERE (status = 'pending' AND next_attempt_at <= now() - make_interval(secs => $2))
               OR (status = 'sending' AND claimed_until < now())
            ORDER BY next_attempt_at LIMIT $1
            """,
            limit,
            grace_seconds,
        )
    return [row["id"] for row in rows]
