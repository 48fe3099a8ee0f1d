"""Rooms, chairs and devices in a search: a time is free only when the member of staff
*and* one resource of the group the service needs are free for the whole blocked range.

Resources have no working hours of their own (they follow their staff's); what makes
one busy is its active allocations: bookings, live holds and blocks. Read from
``allocation`` (the rows ``allocation_no_overlap`` judges), merged by PostgreSQL into
a few ranges per resource as whole epoch seconds, like the staff busy time.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from booking.errors import SlotNotOffered

# Active allocations of some resources overlapping [$3, $4), holds past their expiry
# left out (the next writer there expires them), one booking's own ($5) left out.
_RESOURCE_BUSY_SQL = """
    SELECT resource_id, floor(extract(epoch FROM lower(r)))::bigint AS s,
           floor(extract(epoch FROM upper(r)))::bigint AS e
    FROM (
        SELECT a.resource_id, unnest(range_agg(a.during)) AS r
        FROM allocation a
        LEFT JOIN booking b ON b.business_id = a.business_id AND b.id = a.booking_id
        WHERE a.business_id = $1 AND a.resource_id = ANY($2::uuid[]) AND a.active
          AND a.during && tstzrange($3, $4, '[)')
          AND NOT (b.status IS NOT DISTINCT FROM 'held' AND b.hold_expires_at <= now())
          AND ($5::uuid IS NULL OR a.booking_id IS DISTINCT FROM $5)
        GROUP BY a.resource_id
    ) AS merged
"""


class ResourceBusy:
    """Merged busy seconds of each resource, asked "which are free for this range?"."""

    def __init__(self, resource_ids: Sequence[UUID], rows: Sequence[asyncpg.Record]) -> None:
        self.order = tuple(resource_ids)
        starts: dict[UUID, list[int]] = {r: [] for r in resource_ids}
        ends: dict[UUID, list[int]] = {r: [] for r in resource_ids}
        for resource_id, start, end in sorted(rows, key=lambda row: (row[0], row[1])):
            starts[resource_id].append(start)
            ends[resource_id].append(end)
        self._starts = starts
        self._ends = ends

    def free(self, block_from: int, block_until: int) -> list[UUID]:
        """The resources (in trial order) with nothing in [block_from, block_until)."""
        free: list[UUID] = []
        for resource_id in self.order:
            starts = self._starts[resource_id]
            index = bisect_right(starts, block_until - 1) - 1
            if index < 0 or self._ends[resource_id][index] <= block_from:
                free.append(resource_id)
        return free


async def load_resource_busy(
    conn: asyncpg.Connection,
    business_id: UUID,
    resource_ids: Sequence[UUID],
    range_start: datetime,
    range_end: datetime,
    *,
    exclude_booking: UUID | None = None,
) -> ResourceBusy:
    # A day either side, as for staff: buffers and long services at the edges.
    rows = await conn.fetch(
        _RESOURCE_BUSY_SQL,
        business_id,
        list(resource_ids),
        range_start - timedelta(days=1),
        range_end + timedelta(days=1),
        exclude_booking,
    )
    return ResourceBusy(resource_ids, rows)


def pick_resources(
    resource_group: str | None, resources: Sequence[UUID], resource_id: UUID | None
) -> tuple[UUID, ...]:
    """The resources a search or a write may use, in trial order; () when the service
    needs none. Asking for one the service cannot use is bad input, and so is a write for
    a service whose group has none active (a search answers no times instead)."""
    if resource_group is None:
        if resource_id is not None:
            raise SlotNotOffered(
                "This service does not use a room, chair or device.", field="resource_id"
            )
        return ()
    if resource_id is not None:
        if resource_id not in resources:
            raise SlotNotOffered(
                f"That resource is not an active member of group {resource_group!r}, "
                "which this service needs.",
                field="resource_id",
            )
        return (resource_id,)
    if not resources:
        raise SlotNotOffered(
            f"This service needs one of group {resource_group!r} and none is active.",
            field="service_id",
        )
    return tuple(resources)
