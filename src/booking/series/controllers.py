"""HTTP for recurring series: book one, cancel an occurrence and the following."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from booking.access.principal import Principal
from booking.bookings.checks import CustomerInput
from booking.bookings.controllers import IfMatch, parse_if_match
from booking.series import changes, service
from booking.series.schemas import (
    MovedOccurrence,
    Occurrence,
    SeriesCancel,
    SeriesCancelled,
    SeriesChange,
    SeriesChanged,
    SeriesCreate,
    SeriesOut,
)
from booking.wire_time import business_zone


class SeriesController(Controller):
    path = "/v1"
    tags = ["series"]

    @post(
        "/businesses/{business_id:uuid}/series",
        summary="Book a recurring series (RRULE or a list of dates)",
        description=(
            "Each occurrence is a booking of its own (reference code, reminders, history) "
            "carrying `series_id`. `mode: all_or_nothing` writes every occurrence or none "
            "(409 series-conflict listing each occurrence, conflicts with alternatives); "
            "`skip_conflicts` writes those that fit and lists the others with the nearest "
            "free alternatives. The rule needs COUNT or UNTIL; at most 52 occurrences. "
            'Example: `{"service_id": "...", "starts_at": "2027-01-05T10:00:00+01:00", '
            '"rule": "FREQ=WEEKLY;COUNT=10", "mode": "skip_conflicts", '
            '"customer": {"name": "Anna", "phone": "+393331234567"}}`.'
        ),
        status_code=201,
    )
    async def create_series(
        self,
        business_id: FromPath[UUID],
        data: JSONBody[SeriesCreate],
        principal: NamedDependency[Principal],
    ) -> SeriesOut:
        series_id, outcomes = await service.book_series(
            principal,
            business_id,
            service.SeriesRequest(
                service_id=data.service_id,
                customer=CustomerInput(
                    data.customer.name, data.customer.phone, data.customer.locale
                ),
                mode=data.mode,
                starts_at=data.starts_at,
                rule=data.rule,
                dates=tuple(data.dates) if data.dates is not None else None,
                staff_id=data.staff_id,
                resource_id=data.resource_id,
                channel=data.channel,
                notes=data.notes,
            ),
        )
        tz = await business_zone(business_id)
        occurrences = [Occurrence(**service.occurrence_json(o, tz)) for o in outcomes]
        booked = sum(1 for o in occurrences if o.outcome == "booked")
        return SeriesOut(
            series_id=series_id,
            mode=data.mode,
            booked=booked,
            conflicts=len(occurrences) - booked,
            occurrences=occurrences,
        )

    @post(
        "/bookings/{booking_id:uuid}/series/cancel",
        summary="Cancel this occurrence and every later one of its series",
        description="One transaction; the change policy decides for each (all or none). "
        "To cancel one occurrence only, cancel the booking itself.",
        status_code=200,
    )
    async def cancel_following(
        self,
        booking_id: FromPath[UUID],
        data: JSONBody[SeriesCancel],
        principal: NamedDependency[Principal],
    ) -> SeriesCancelled:
        series_id, cancelled = await service.cancel_following(principal, booking_id, data.reason)
        return SeriesCancelled(series_id=series_id, cancelled_booking_ids=cancelled)

    @post(
        "/bookings/{booking_id:uuid}/series/change",
        summary="Change this occurrence and every later one of its series",
        description=(
            "Give this occurrence's new `starts_at` (optionally `staff_id`): every later "
            "active occurrence moves by as many days, to the same new time of day in the "
            "business's zone. One transaction: the change policy decides for each, and if "
            "any occurrence cannot move nothing changes (409 series-conflict listing every "
            "occurrence, conflicts with the nearest free alternatives). Each occurrence keeps "
            "its id and reference code; its customer gets the change SMS. To change one "
            "occurrence only, change the booking itself. "
            'Example: `{"starts_at": "2027-01-12T11:00:00+01:00"}`.'
        ),
        status_code=200,
    )
    async def change_following(
        self,
        booking_id: FromPath[UUID],
        data: JSONBody[SeriesChange],
        principal: NamedDependency[Principal],
        if_match: IfMatch = None,
    ) -> SeriesChanged:
        series_id, moved = await changes.change_following(
            principal,
            booking_id,
            changes.FollowingChange(
                starts_at=data.starts_at,
                staff_id=data.staff_id,
                override_reason=data.override_reason,
            ),
            expected_version=parse_if_match(if_match),
        )
        return SeriesChanged(
            series_id=series_id,
            moved=len(moved),
            occurrences=[MovedOccurrence(**item) for item in moved],
        )
