"""arq adapter of the retention setting (registered in booking.worker's lists)."""

from __future__ import annotations

from typing import Any

from booking.privacy.retention import anonymise_stale_customers


async def apply_retention(ctx: dict[str, Any]) -> int:
    """Anonymise customers past their business's retention; safe to run twice."""
    return await anonymise_stale_customers()
