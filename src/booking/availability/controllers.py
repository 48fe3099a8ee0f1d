"""HTTP for availability search."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from msgspec import Struct

from booking.access.principal import Principal
from booking.availability.answer import availability


class FreeTime(Struct):
    starts_at: datetime
    ends_at: datetime
    staff_ids: list[UUID]
    # When the service needs a room, chair or device: those free for the whole slot
    # (any of them with any of the staff); null for staff-only services.
    resource_ids: list[UUID] | None = None


class Availability(Struct):
    service_id: UUID
    time_zone: str
    slots: list[FreeTime]


class AvailabilityController(Controller):
    path = "/v1/businesses/{business_id:uuid}/availability"
    tags = ["availability"]

    @get(
        summary="Free slots for a service",
        description=(
            "Slots start inside [from, to) (at most 62 days), respect working hours in the "
            "business's time zone (DST included), time off, buffers, bookings, live holds "
            "and minimum notice. Each slot lists the staff free for it; filter with staff_id. "
            "A service that needs a room, chair or device lists the resources free for the "
            "whole slot too (filter with resource_id); only times where both are free are "
            "offered."
        ),
    )
    async def search(
        self,
        business_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        service_id: FromQuery[UUID],
        range_from: Annotated[datetime, QueryParameter(name="from", examples=[])],
        range_to: Annotated[datetime, QueryParameter(name="to")],
        staff_id: FromQuery[UUID | None] = None,
        resource_id: FromQuery[UUID | None] = None,
    ) -> Availability:
        principal.require("availability:read", business_id)
        context, times = await availability(
            business_id,
            service_id,
            range_from,
            range_to,
            staff_id=staff_id,
            resource_id=resource_id,
        )
        tz = context.tz
        return Availability(
            service_id=service_id,
            time_zone=tz.key,
            slots=[
                FreeTime(starts_at.astimezone(tz), ends_at.astimezone(tz), staff_ids, resources)
                for starts_at, ends_at, staff_ids, resources in times
            ],
        )
