"""Start times where a whole sequence fits: every segment free at its own time.

Each segment's free starts come from the one slot search (``search_slots``: working
hours, time off, bookings, holds, classes, resources); later segments are searched on
a 5-minute grid, since their start is the previous end plus a gap. A start is offered
when each segment has a member of staff (and resource) free whose blocked range does
not overlap an earlier segment given to the same person or room.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.availability.context import load_service_context
from booking.availability.service import search_slots
from booking.availability.slots import FreeSlot
from booking.bookings.checks import as_utc
from booking.errors import InvalidInput
from booking.sequences.service import SegmentRequest, _times

MAX_RANGE = timedelta(days=7)
LATER_STEP = timedelta(minutes=5)


async def sequence_starts(
    principal: Principal,
    business_id: UUID,
    wanted: list[SegmentRequest],
    range_from: datetime,
    range_to: datetime,
) -> list[dict[str, Any]]:
    principal.require("availability:read", business_id)
    range_from, range_to = as_utc(range_from, "from"), as_utc(range_to, "to")
    if not timedelta(0) < range_to - range_from <= MAX_RANGE:
        raise InvalidInput("'to' must be after 'from', at most 7 days.", field="to")
    if not 2 <= len(wanted) <= 5:
        raise InvalidInput("A sequence has 2 to 5 segments.", field="service_id")
    async with db.connection() as conn:
        return await find_starts(
            conn,
            business_id,
            wanted,
            range_from,
            range_to,
            apply_notice=not principal.is_staff,
        )


async def find_starts(
    conn: asyncpg.Connection,
    business_id: UUID,
    wanted: list[SegmentRequest],
    range_from: datetime,
    range_to: datetime,
    *,
    apply_notice: bool,
) -> list[dict[str, Any]]:
    """The starts in the (checked) range where the whole sequence fits, each with the
    staff (and resources) of every segment; also the self-service page's visit picker."""
    contexts = [await load_service_context(conn, business_id, s.service_id) for s in wanted]
    shape = _times(contexts, wanted, range_from)  # offsets and blocked ranges from a start
    offsets = [seg[0] - range_from for seg in shape]
    by_start: list[dict[datetime, list[FreeSlot]]] = []
    for index, (context, segment) in enumerate(zip(contexts, wanted, strict=True)):
        searched = context if index == 0 else replace(context, step=LATER_STEP)
        slots = await search_slots(
            conn,
            searched,
            range_from + offsets[index],
            range_to + offsets[index],
            staff_id=segment.staff_id,
            resource_id=segment.resource_id,
            apply_notice=apply_notice,
        )
        found: dict[datetime, list[FreeSlot]] = {}
        for slot in slots:
            found.setdefault(slot.starts_at, []).append(slot)
        by_start.append(found)
    answers: list[dict[str, Any]] = []
    for start in sorted(by_start[0]):
        chosen = _fit(start, shape, range_from, by_start)
        if chosen is not None:
            answers.append({"starts_at": start, "segments": chosen})
    return answers


def _fit(
    start: datetime,
    shape: list[tuple[datetime, datetime, datetime, datetime]],
    origin: datetime,
    by_start: list[dict[datetime, list[FreeSlot]]],
) -> list[dict[str, Any]] | None:
    """The first assignment of staff (and resources) to every segment, or None.

    A search with backtracking: the first segment's first free person may be the only
    one who could do a later segment, so a dead end tries the next candidate instead of
    dropping the start (the order of free slots is not a preference)."""
    taken: list[tuple[UUID, datetime, datetime]] = []  # (staff or resource, blocked range)
    chosen: list[dict[str, Any]] = []

    def place(position: int) -> bool:
        if position > len(shape):
            return True
        seg_start, _, b_from, b_until = shape[position - 1]
        moment = start + (seg_start - origin)
        lo, hi = start + (b_from - origin), start + (b_until - origin)
        for slot in by_start[position - 1].get(moment, ()):
            if any(
                who in (slot.staff_id, slot.resource_id) and lo < t_hi and t_lo < hi
                for who, t_lo, t_hi in taken
            ):
                continue
            marks = [(slot.staff_id, lo, hi)]
            if slot.resource_id is not None:
                marks.append((slot.resource_id, lo, hi))
            taken.extend(marks)
            chosen.append(
                {
                    "position": position,
                    "starts_at": moment,
                    "staff_id": slot.staff_id,
                    "resource_id": slot.resource_id,
                }
            )
            if place(position + 1):
                return True
            del taken[-len(marks) :]
            chosen.pop()
        return False

    return chosen if place(1) else None
