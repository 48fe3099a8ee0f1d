"""arq adapter: forget idempotency records older than 24 hours."""

from __future__ import annotations

from typing import Any

from booking.idempotency.service import purge_expired


async def purge_idempotency_records(ctx: dict[str, Any]) -> int:
    return await purge_expired()
