"""arq adapters for the guarantee: thin, idempotent cron jobs."""

from __future__ import annotations

from typing import Any

from booking import db
from booking.guarantee import offers, promises
from booking.outbox.service import enqueue_follow_ups


async def expire_offers(ctx: dict[str, Any]) -> int:
    """Cron: release the holds of unanswered offers (their messages go through the outbox)."""
    total = 0
    while True:
        done = await offers.expire_due_offers()
        total += done
        if done == 0:
            return total


async def watch_promises(ctx: dict[str, Any]) -> int:
    """Cron: the promise watchdog; enqueues the SMS it queued after its commit."""
    async with db.transaction() as conn:
        jobs = await promises.run_watchdog(conn)
    await enqueue_follow_ups(ctx["redis"], jobs)
    return len(jobs)
