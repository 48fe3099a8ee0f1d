"""arq adapters for SMS: thin, idempotent, take ids.

The sender is built once per worker (:func:`open_sender` at start-up) and
closed at shutdown; ``ctx`` may carry ``sms_backoff_base`` (seconds) to speed
up retries in tests.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from arq import Retry
from arq.worker import func

from booking import db
from booking.notifications import sending, service
from booking.notifications.reminders import take_due_reminders
from booking.notifications.sms import SmsSender, build_sms_sender
from booking.outbox.service import enqueue_follow_ups
from booking.settings import Settings

log = logging.getLogger("booking.notifications")

_SENDER_KEY = "sms_sender"


async def open_sender(ctx: dict[str, Any]) -> None:
    """Worker start-up: one SMS sender per worker, and the settings templates use."""
    settings: Settings = ctx["settings"]
    service.configure(settings)
    ctx[_SENDER_KEY] = build_sms_sender(settings)


async def close_sender(ctx: dict[str, Any]) -> None:
    sender: SmsSender | None = ctx.pop(_SENDER_KEY, None)
    if sender is not None:
        await sender.aclose()


def _policy(ctx: dict[str, Any]) -> sending.SendPolicy:
    """The send policy; ``ctx`` may shorten the backoff and the lease (tests, drills)."""
    lease = ctx.get("sms_lease_seconds")
    return sending.SendPolicy(
        backoff_base=float(ctx.get("sms_backoff_base", sending.DEFAULT_BACKOFF_BASE)),
        lease=timedelta(seconds=float(lease)) if lease is not None else sending.DEFAULT_LEASE,
    )


async def send_sms(ctx: dict[str, Any], message_id: str) -> str:
    """Send one queued message; Retry(defer=...) on a retryable failure or a live claim."""
    wait = await sending.send_message(
        UUID(message_id), ctx[_SENDER_KEY], ctx["settings"], _policy(ctx)
    )
    if wait is not None:
        raise Retry(defer=wait)
    return message_id


async def send_sms_batch(
    ctx: dict[str, Any], message_ids: list[str], request_ids: dict[str, str] | None = None
) -> int:
    """Send the messages of one relay pass (``FollowUpJob.batch_as``); each one that must
    wait (a retryable failure, a live claim) is handed to a ``send_sms`` job of its own,
    deferred by its wait. How many were sent or settled now."""
    ids = [UUID(i) for i in message_ids]
    traces = {UUID(i): trace for i, trace in (request_ids or {}).items()}
    waits = await sending.send_batch(
        ids, ctx[_SENDER_KEY], ctx["settings"], _policy(ctx), request_ids=traces
    )
    if waits:
        now = datetime.now(UTC)
        later = [
            dataclasses.replace(
                service.send_job(message_id),
                defer_until=now + timedelta(seconds=wait),
                request_id=traces.get(message_id),
            )
            for message_id, wait in waits.items()
        ]
        # Should Redis refuse, requeue_messages finds them (pending, or a lapsed claim).
        await enqueue_follow_ups(ctx["redis"], later)
    return len(ids) - len(waits)


async def send_due_reminders(ctx: dict[str, Any]) -> int:
    """Cron: queue the SMS of every reminder that is due, then enqueue their sends."""
    total = 0
    while True:
        async with db.transaction() as conn:
            taken, jobs = await take_due_reminders(conn, service.queue_sms)
        await enqueue_follow_ups(ctx["redis"], jobs)
        total += len(jobs)
        if taken == 0:
            return total


async def requeue_messages(ctx: dict[str, Any]) -> int:
    """Cron: re-enqueue messages whose job went missing (Redis outage, crash after commit)."""
    ids = await sending.messages_due_for_requeue()
    # Under ids of this run: the lost job may still be in arq, started by a worker that
    # was killed, and arq would refuse its id again until its in-progress mark expires.
    run = datetime.now(UTC).isoformat(timespec="seconds")
    return await enqueue_follow_ups(
        ctx["redis"], [service.send_job(i) for i in ids], fresh=f"requeue:{run}"
    )


# Retries of send_sms are bounded by sending.MAX_ATTEMPTS in the database; arq's
# own bound is only the backstop (a live claim also costs a try).
SEND_SMS = func(send_sms, name=service.SEND_JOB, max_tries=sending.MAX_ATTEMPTS * 3)
# A batch never asks arq for a retry (a message that must wait gets a send_sms job of its
# own), so its tries are reruns after a worker died mid-batch: those must run.
SEND_SMS_BATCH = func(
    send_sms_batch, name=service.SEND_BATCH_JOB, max_tries=sending.MAX_ATTEMPTS * 3
)
