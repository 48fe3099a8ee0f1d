"""arq adapters for bookings: thin, idempotent, take ids."""

from __future__ import annotations

from typing import Any

from booking.bookings.holds import sweep_expired_holds
from booking.telemetry import metrics


async def expire_holds(ctx: dict[str, Any]) -> int:
    """Release every hold past its TTL; safe to run any number of times."""
    released = await sweep_expired_holds()
    metrics.HOLD_EXPIRIES.inc(released)
    return released
