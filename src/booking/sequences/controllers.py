"""HTTP for sequences: book a visit of several services in a row, move it, read it,
find times where it fits, and a member of staff's own segments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from booking.access.principal import Principal
from booking.access.tokens import make_booking_token
from booking.bookings.checks import CustomerInput
from booking.bookings.controllers import IfMatch, parse_if_match
from booking.bookings.queries import made_since
from booking.bookings.schemas import booking_out
from booking.errors import InvalidInput
from booking.idempotency import service as idempotency
from booking.sequences import availability, service
from booking.sequences.schemas import (
    SegmentOut,
    SegmentSlot,
    SequenceCreate,
    SequenceMove,
    SequenceSlot,
    VisitOut,
)
from booking.settings import Settings
from booking.wire_time import business_zone, localize


async def visit_out(
    booking: dict[str, Any], segments: list[dict[str, Any]], manage_token: str | None = None
) -> VisitOut:
    tz = await business_zone(booking["business_id"])
    fields = SegmentOut.__struct_fields__
    return VisitOut(
        booking=booking_out(booking, tz, manage_token),
        segments=[localize(SegmentOut(**{k: s[k] for k in fields}), tz) for s in segments],
    )


class SequenceController(Controller):
    path = "/v1"
    tags = ["sequences"]

    @post(
        "/businesses/{business_id:uuid}/sequences",
        summary="Book a visit of several services in a row (a cut, then a colour)",
        description=(
            "Each segment starts where the previous one ends plus its `gap_after_minutes` "
            "(0-240) and has its own member of staff (any eligible one when omitted) and "
            "resource. One transaction: every segment is taken or none (409 slot-taken). "
            "The booking's reference code names the whole visit. Example: "
            '`{"starts_at": "2027-01-05T10:00:00+01:00", "segments": [{"service_id": '
            '"<cut>", "gap_after_minutes": 0}, {"service_id": "<colour>"}], '
            '"customer": {"name": "Anna", "phone": "+393331234567"}}`.'
        ),
        status_code=201,
    )
    async def create_sequence(
        self,
        business_id: FromPath[UUID],
        data: JSONBody[SequenceCreate],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> VisitOut:
        since = idempotency.resumed_since()
        made = None
        if since is not None and data.segments:  # a retry of a request that died
            made = await made_since(
                principal,
                business_id,
                since,
                service_id=data.segments[0].service_id,
                starts_at=data.starts_at,
                phone=data.customer.phone,
            )
        if made is not None and made["is_sequence"]:
            booking, segments = await service.visit(principal, made["id"])
        else:
            booking, segments = await service.book_sequence(
                principal,
                business_id,
                data.starts_at,
                [
                    service.SegmentRequest(
                        s.service_id, s.staff_id, s.resource_id, s.gap_after_minutes
                    )
                    for s in data.segments
                ],
                CustomerInput(data.customer.name, data.customer.phone, data.customer.locale),
                channel=data.channel,
                notes=data.notes,
            )
        token = make_booking_token(settings.secret_key, booking["id"])
        return await visit_out(booking, segments, token)

    @post(
        "/bookings/{booking_id:uuid}/sequence/move",
        summary="Move a whole visit to another start (one transaction)",
        status_code=200,
    )
    async def move_sequence(
        self,
        booking_id: FromPath[UUID],
        data: JSONBody[SequenceMove],
        principal: NamedDependency[Principal],
        if_match: IfMatch = None,
    ) -> VisitOut:
        booking, segments = await service.move_sequence(
            principal,
            booking_id,
            data.starts_at,
            override_reason=data.override_reason,
            expected_version=parse_if_match(if_match),
        )
        return await visit_out(booking, segments)

    @get("/bookings/{booking_id:uuid}/segments", summary="A visit and its segments")
    async def get_visit(
        self, booking_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> VisitOut:
        booking, segments = await service.visit(principal, booking_id)
        return await visit_out(booking, segments)

    @get(
        "/businesses/{business_id:uuid}/sequence-availability",
        summary="Start times where a whole sequence fits",
        description=(
            "Repeat service_id in order (and gap, minutes after each, default 0): "
            "`?service_id=<cut>&service_id=<colour>&gap=0&from=...&to=...` (at most 7 days)."
        ),
    )
    async def sequence_availability(
        self,
        business_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        service_id: FromQuery[list[UUID]],
        range_from: Annotated[datetime, QueryParameter(name="from")],
        range_to: Annotated[datetime, QueryParameter(name="to")],
        gap: Annotated[list[int] | None, QueryParameter(required=False)] = None,
    ) -> list[SequenceSlot]:
        gaps = list(gap or [])
        if len(gaps) > len(service_id) or any(not 0 <= g <= 240 for g in gaps):
            raise InvalidInput("gap: one per service (0-240 minutes), in order.", field="gap")
        gaps += [0] * (len(service_id) - len(gaps))
        found = await availability.sequence_starts(
            principal,
            business_id,
            [
                service.SegmentRequest(s, gap_after_minutes=g)
                for s, g in zip(service_id, gaps, strict=True)
            ],
            range_from,
            range_to,
        )
        tz = await business_zone(business_id)
        return [
            SequenceSlot(
                starts_at=item["starts_at"].astimezone(tz),
                segments=[localize(SegmentSlot(**seg), tz) for seg in item["segments"]],
            )
            for item in found
        ]

    @get(
        "/businesses/{business_id:uuid}/staff/{staff_id:uuid}/segments",
        summary="A member of staff's own segments of visits (staff)",
    )
    async def staff_segments(
        self,
        business_id: FromPath[UUID],
        staff_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        range_from: Annotated[datetime, QueryParameter(name="from")],
        range_to: Annotated[datetime, QueryParameter(name="to")],
    ) -> list[SegmentOut]:
        rows = await service.staff_segments(principal, business_id, staff_id, range_from, range_to)
        tz = await business_zone(business_id)
        return [localize(SegmentOut(**row), tz) for row in rows]
