"""arq adapters for staff calendars: the scheduled sync and the write-back job."""

from __future__ import annotations

import logging
from typing import Any

from booking.calendars.sync import due_connections, sync_connection
from booking.calendars.writeback import calendar_write_back

log = logging.getLogger("booking.calendars")

__all__ = ["calendar_write_back", "sync_due_calendars"]


async def sync_due_calendars(ctx: dict[str, Any]) -> int:
    """Sync every connection whose time has come (each every 15 minutes; after an error,
    30). A failing source only writes its own status; the next one still runs."""
    synced = 0
    for business_id, connection_id in await due_connections():
        report = await sync_connection(business_id, connection_id)
        if report.status == "error":
            log.warning("calendar %s: %s", connection_id, report.error)
        synced += 1
    return synced
