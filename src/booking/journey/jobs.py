"""arq adapters for the journey: thin, idempotent cron jobs."""

from __future__ import annotations

from typing import Any

from booking import db
from booking.journey import feedback, summary
from booking.outbox.service import enqueue_follow_ups


async def ask_for_feedback(ctx: dict[str, Any]) -> int:
    """Cron: ask completed bookings' customers for a score; enqueue the SMS after commit."""
    total = 0
    while True:
        async with db.transaction() as conn:
            jobs = await feedback.ask_due(conn, ctx["settings"])
        await enqueue_follow_ups(ctx["redis"], jobs)
        total += len(jobs)
        if len(jobs) < feedback.ASK_BATCH:
            return total


async def fold_journey_notes(ctx: dict[str, Any]) -> int:
    """Cron: fold the journey metrics' change notes of every business (journey/summary.py)."""
    return await summary.fold_all_notes()
