"""arq adapters for webhooks: thin, idempotent, take ids."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from booking.outbox.dispatch import FollowUpJob
from booking.telemetry import metrics
from booking.webhooks.service import attempt_delivery, due_deliveries


async def enqueue(redis: Any, jobs: list[FollowUpJob]) -> int:
    """Enqueue follow-up jobs under their deterministic ids (a duplicate is a no-op)."""
    queued = 0
    for job in jobs:
        done = await redis.enqueue_job(
            job.function, *job.args, _job_id=job.job_id, _defer_until=job.defer_until, **job.kwargs
        )
        queued += done is not None
    return queued


async def deliver_webhook(ctx: dict[str, Any], delivery_id: str) -> str:
    """One delivery attempt if it is due; a failure schedules the next one in the row."""
    outcome = (await attempt_delivery(UUID(delivery_id))).outcome
    metrics.WEBHOOK_DELIVERIES.labels(outcome).inc()
    return outcome


async def retry_due_webhooks(ctx: dict[str, Any]) -> int:
    """Cron: enqueue the deliveries whose next attempt is due."""
    return await enqueue(ctx["redis"], await due_deliveries())
