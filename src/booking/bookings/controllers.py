"""HTTP for holds and bookings: parse, authorize, call one service function, shape."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Response, get, patch, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.params import (
    FromPath,
    FromQuery,
    HeaderParameter,
    JSONBody,
    PathParameter,
    QueryParameter,
)
from msgspec import UNSET

from booking.access.principal import Principal
from booking.access.tokens import make_booking_token
from booking.bookings import changes, holds, placing, queries, transitions
from booking.bookings.checks import CustomerInput
from booking.bookings.schemas import (
    ActionBody,
    BookingChange,
    BookingCreate,
    BookingOut,
    BookingPage,
    HistoryEvent,
    HoldConfirm,
    HoldCreate,
    HoldOut,
    HoldRelease,
    RebookingOptions,
    booking_out,
    history_out,
    slot_out,
)
from booking.errors import InvalidInput
from booking.idempotency import service as idempotency
from booking.settings import Settings
from booking.wire_time import UTC_ZONE, business_zone

ETAG_DOC = ResponseHeader(
    name="ETag",
    description="The booking's version; send it back in If-Match.",
    documentation_only=True,
)
IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        required=False,
        description=(
            'The ETag you read (e.g. "3"); the write fails with 412 if the booking changed.'
        ),
    ),
]


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(raw: str | None) -> int | None:
    if raw is None or raw.strip() == "*":
        return None
    value = raw.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not value.isdigit():
        raise InvalidInput('If-Match must be an ETag such as "3".', field="If-Match")
    return int(value)


async def booking_response(
    row: dict[str, Any], *, status_code: int = 200, manage_token: str | None = None
) -> Response[BookingOut]:
    return Response(
        booking_out(row, await business_zone(row["business_id"]), manage_token),
        status_code=status_code,
        headers={"ETag": etag(row["version"])},
    )


def _token_for(settings: Settings, row: dict[str, Any]) -> str:
    return make_booking_token(settings.secret_key, row["id"])


class HoldController(Controller):
    path = "/v1"
    tags = ["holds"]

    @post(
        "/businesses/{business_id:uuid}/holds",
        summary="Hold a slot while the customer checks out",
        description=(
            "Takes the time for the business's hold TTL (default 10 min). Omit staff_id to "
            "take whichever eligible member of staff is free. 409 lists nearby alternatives."
        ),
        status_code=201,
    )
    async def create_hold(
        self,
        business_id: FromPath[UUID],
        data: JSONBody[HoldCreate],
        principal: NamedDependency[Principal],
    ) -> HoldOut:
        result = await holds.create_hold(
            principal,
            business_id,
            data.service_id,
            data.starts_at,
            staff_id=data.staff_id,
            channel=data.channel,
            resource_id=data.resource_id,
            resumed_since=idempotency.resumed_since(),
        )
        row = result.booking
        tz = await business_zone(row["business_id"])
        return HoldOut(
            hold=booking_out(row, tz),
            hold_token=result.hold_token,
            expires_at=row["hold_expires_at"].astimezone(tz),
        )

    @post(
        "/holds/{hold_id:uuid}/confirm",
        summary="Turn a hold into a booking (same id)",
        status_code=201,
        response_headers=[ETAG_DOC],
    )
    async def confirm_hold(
        self,
        hold_id: FromPath[UUID],
        data: JSONBody[HoldConfirm],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> Response[BookingOut]:
        row = await holds.confirm_hold(
            principal,
            hold_id,
            data.hold_token,
            CustomerInput(data.customer.name, data.customer.phone, data.customer.locale),
            notes=data.notes,
            resumed_since=idempotency.resumed_since(),
        )
        return await booking_response(row, status_code=201, manage_token=_token_for(settings, row))

    @post("/holds/{hold_id:uuid}/release", summary="Give a held slot back", status_code=200)
    async def release_hold(
        self,
        hold_id: FromPath[UUID],
        data: JSONBody[HoldRelease],
        principal: NamedDependency[Principal],
    ) -> Response[BookingOut]:
        return await booking_response(await holds.release_hold(principal, hold_id, data.hold_token))


class BookingController(Controller):
    path = "/v1"
    tags = ["bookings"]

    @post(
        "/businesses/{business_id:uuid}/bookings",
        summary="Book directly (no hold)",
        status_code=201,
        response_headers=[ETAG_DOC],
    )
    async def create_booking(
        self,
        business_id: FromPath[UUID],
        data: JSONBody[BookingCreate],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> Response[BookingOut]:
        since = idempotency.resumed_since()
        row = None
        if since is not None:  # a retry of a request that died: did its booking commit?
            row = await queries.made_since(
                principal,
                business_id,
                since,
                service_id=data.service_id,
                starts_at=data.starts_at,
                phone=data.customer.phone,
            )
        if row is None:
            row = await placing.create_booking(
                principal,
                business_id,
                data.service_id,
                data.starts_at,
                CustomerInput(data.customer.name, data.customer.phone, data.customer.locale),
                staff_id=data.staff_id,
                channel=data.channel,
                notes=data.notes,
                resource_id=data.resource_id,
            )
        return await booking_response(row, status_code=201, manage_token=_token_for(settings, row))

    @get("/businesses/{business_id:uuid}/bookings", summary="List bookings (cursor pages)")
    async def list_bookings(
        self,
        business_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        range_from: Annotated[datetime | None, QueryParameter(name="from", required=False)] = None,
        range_to: Annotated[datetime | None, QueryParameter(name="to", required=False)] = None,
        staff_id: FromQuery[UUID | None] = None,
        customer_id: FromQuery[UUID | None] = None,
        status: Annotated[
            list[str] | None,
            QueryParameter(description="Repeat or comma-separate: status=pending,confirmed"),
        ] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=300)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> BookingPage:
        statuses = tuple(
            part.strip() for value in (status or []) for part in value.split(",") if part.strip()
        )
        items, next_cursor = await queries.list_bookings(
            principal,
            business_id,
            queries.BookingFilter(
                range_from=range_from,
                range_to=range_to,
                staff_id=staff_id,
                customer_id=customer_id,
                statuses=statuses,
                cursor=cursor,
                limit=limit,
            ),
        )
        tz = await business_zone(business_id)
        return BookingPage(items=[booking_out(row, tz) for row in items], next_cursor=next_cursor)

    @get("/bookings/{booking_id:uuid}", summary="Read a booking", response_headers=[ETAG_DOC])
    async def get_booking(
        self, booking_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> Response[BookingOut]:
        return await booking_response(await queries.get_booking(principal, booking_id))

    @get("/bookings/{booking_id:uuid}/history", summary="The booking's journey, oldest first")
    async def get_history(
        self, booking_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> list[HistoryEvent]:
        rows = await queries.booking_history(principal, booking_id)
        tz = await business_zone(rows[0]["business_id"]) if rows else UTC_ZONE
        return [history_out(row, tz) for row in rows]

    @patch(
        "/bookings/{booking_id:uuid}",
        summary="Change time, staff or service in one atomic step",
        description=(
            "The booking keeps its id and reference code; its version increases. On conflict "
            "nothing changes and the 409 lists the nearest free alternatives. Customers and "
            "partners are bound by the change policy; staff may override it with "
            "override_reason, which is recorded."
        ),
        response_headers=[ETAG_DOC],
    )
    async def change_booking(
        self,
        booking_id: FromPath[UUID],
        data: JSONBody[BookingChange],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[BookingOut]:
        change = changes.ChangeRequest(
            starts_at=None if data.starts_at is UNSET else data.starts_at,
            staff_id=None if data.staff_id is UNSET else data.staff_id,
            service_id=None if data.service_id is UNSET else data.service_id,
            resource_id=None if data.resource_id is UNSET else data.resource_id,
            override_reason=data.override_reason,
        )
        row = await changes.change_booking(
            principal,
            booking_id,
            change,
            expected_version=parse_if_match(if_match),
            resumed_since=idempotency.resumed_since(),
        )
        return await booking_response(row)

    async def _act(
        self,
        action: str,
        booking_id: UUID,
        principal: Principal,
        if_match: str | None,
        data: ActionBody | None,
    ) -> Response[BookingOut]:
        row = await transitions.transition(
            principal,
            booking_id,
            action,
            expected_version=parse_if_match(if_match),
            reason=data.reason if data else None,
            resumed_since=idempotency.resumed_since(),
        )
        return await booking_response(row)

    @post("/bookings/{booking_id:uuid}/cancel", summary="Cancel", status_code=200)
    async def cancel(
        self,
        booking_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
        data: JSONBody[ActionBody | None] = None,
    ) -> Response[BookingOut]:
        return await self._act("cancel", booking_id, principal, if_match, data)

    @post(
        "/bookings/{booking_id:uuid}/confirm",
        summary="The business confirms a pending booking (compare-and-swap on If-Match)",
        status_code=200,
    )
    async def confirm(
        self,
        booking_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
        data: JSONBody[ActionBody | None] = None,
    ) -> Response[BookingOut]:
        return await self._act("confirm", booking_id, principal, if_match, data)

    @post(
        "/bookings/{booking_id:uuid}/check-in",
        summary="Customer arrived",
        description=(
            "Opens at midnight of the appointment's day in the business's time zone; "
            "earlier it is a 409 `/problems/check-in-too-early` whose `opens_at` says when."
        ),
        status_code=200,
    )
    async def check_in(
        self,
        booking_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
        data: JSONBody[ActionBody | None] = None,
    ) -> Response[BookingOut]:
        return await self._act("check_in", booking_id, principal, if_match, data)

    @post("/bookings/{booking_id:uuid}/complete", summary="Appointment done", status_code=200)
    async def complete(
        self,
        booking_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
        data: JSONBody[ActionBody | None] = None,
    ) -> Response[BookingOut]:
        return await self._act("complete", booking_id, principal, if_match, data)

    @post("/bookings/{booking_id:uuid}/no-show", summary="Customer did not come", status_code=200)
    async def no_show(
        self,
        booking_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
        data: JSONBody[ActionBody | None] = None,
    ) -> Response[BookingOut]:
        return await self._act("no_show", booking_id, principal, if_match, data)


class FrontDeskController(Controller):
    path = "/v1/businesses/{business_id:uuid}/front-desk"
    tags = ["front desk"]

    @get(
        "/rebooking/{reference_code:str}",
        summary="Rebook at the counter: the booking and the earliest free alternatives",
        description="Step one of two; step two is PATCH /v1/bookings/{id} with the chosen slot.",
    )
    async def rebooking(
        self,
        business_id: FromPath[UUID],
        reference_code: Annotated[str, PathParameter(max_length=20)],
        principal: NamedDependency[Principal],
        limit: Annotated[int, QueryParameter(ge=1, le=20)] = 5,
    ) -> RebookingOptions:
        row, alternatives = await queries.rebooking_options(
            principal, business_id, reference_code, limit
        )
        return RebookingOptions(
            booking=booking_out(row, await business_zone(business_id)),
            alternatives=[slot_out(a) for a in alternatives],
        )
