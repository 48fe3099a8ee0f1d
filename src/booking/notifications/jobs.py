"""arq adapters for SMS: thin, idempotent, take ids.

The sender is built once per worker (:func:`open_sender` at start-up) and
closed at shutdown; ``ctx`` may carry ``sms_backoff_base`` (seconds) to speed
up retries in tests.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from arq import Retry
from arq.worker import func

from booking import db
from booking.notifications import service
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


async def send_sms(ctx: dict[str, Any], message_id: str) -> str:
    """Send one queued message; Retry(defer=...) on a retryable failure or a live claim."""
    policy = service.SendPolicy(
        backoff_base=float(ctx.get("sms_backoff_base", service.DEFAULT_BACKOFF_BASE))
    )
    wait = await service.send_message(UUID(message_id), ctx[_SENDER_KEY], ctx["settings"], policy)
    if wait is not None:
        raise Retry(defer=wait)
    return message_id


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
    ids = await service.messages_due_for_requeue()
    return await enqueue_follow_ups(ctx["redis"], [service.send_job(i) for i in ids])


# Retries of send_sms are bounded by service.MAX_ATTEMPTS in the database; arq's
# own bound is only the backstop (a live claim also costs a try).
SEND_SMS = func(send_sms, name=service.SEND_JOB, max_tries=service.MAX_ATTEMPTS * 3)
