"""The availability answer: each free start with the staff and, when the service needs
one, the resources free for it together (any of the staff with any of the resources
is a combination the write path can take)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from booking import db
from booking.availability.context import ServiceContext
from booking.availability.resources import load_resource_busy, pick_resources
from booking.availability.service import free_times

AnswerTime = tuple[datetime, datetime, list[UUID], list[UUID] | None]


async def availability(
    business_id: UUID,
    service_id: UUID,
    range_start: datetime,
    range_end: datetime,
    *,
    staff_id: UUID | None = None,
    resource_id: UUID | None = None,
) -> tuple[ServiceContext, list[AnswerTime]]:
    context, times = await free_times(business_id, service_id, range_start, range_end, staff_id)
    if context.resource_group is None:
        pick_resources(None, (), resource_id)  # asking for one is bad input
        return context, [(start, end, staff, None) for start, end, staff in times]
    if not context.resources and resource_id is None:
        return context, []  # the group it needs has none active: no time fits
    resources = pick_resources(context.resource_group, context.resources, resource_id)
    async with db.connection() as conn:
        busy = await load_resource_busy(conn, business_id, resources, range_start, range_end)
    before = int(context.shape.buffer_before.total_seconds())
    span = int((context.shape.duration + context.shape.buffer_after).total_seconds())
    answer: list[AnswerTime] = []
    for start, end, staff in times:
        moment = int(start.timestamp())
        free = busy.free(moment - before, moment + span)
        if free:
            answer.append((start, end, staff, free))
    return context, answer
