"""HTTP for group sessions: schedule and list classes, book, hold and move seats."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from booking.access.guards import requires
from booking.access.principal import Principal
from booking.access.tokens import make_booking_token
from booking.bookings.checks import CustomerInput
from booking.bookings.controllers import ETAG_DOC, IfMatch, booking_response, parse_if_match
from booking.bookings.queries import made_since
from booking.bookings.schemas import BookingOut, booking_out
from booking.guarantee.schemas import offer_out
from booking.idempotency import service as idempotency
from booking.sessions import service
from booking.sessions.schemas import (
    GroupService,
    GroupServiceOut,
    SeatsCreate,
    SeatsHeld,
    SeatsHold,
    SeatsMove,
    SessionCancel,
    SessionCancelled,
    SessionCreate,
    SessionOut,
)
from booking.settings import Settings
from booking.wire_time import business_zone, localize

STAFF = requires(kinds=("admin", "staff"))


async def session_out(row: dict[str, Any]) -> SessionOut:
    tz = await business_zone(row["business_id"])
    fields = {name: row[name] for name in SessionOut.__struct_fields__ if name in row}
    return localize(SessionOut(**fields, time_zone=tz.key), tz)


class SessionController(Controller):
    path = "/v1/businesses/{business_id:uuid}"
    tags = ["sessions"]

    @put(
        "/services/{service_id:uuid}/group",
        summary="Make a service a group service (managers)",
        description=(
            "`capacity` is the default number of seats of its sessions; `null` makes it a "
            '1:1 service again. Example: `{"capacity": 12}`.'
        ),
        opt=requires(kinds=("admin", "staff")),
    )
    async def set_group(
        self,
        business_id: FromPath[UUID],
        service_id: FromPath[UUID],
        data: JSONBody[GroupService],
        principal: NamedDependency[Principal],
    ) -> GroupServiceOut:
        result = await service.set_group_service(principal, business_id, service_id, data.capacity)
        return GroupServiceOut(**result)

    @post(
        "/sessions",
        summary="Schedule a class (staff)",
        description=(
            "A session of a group service: a time, a member of staff who offers it, "
            "optionally a room, and a capacity (default: the service's). It takes the "
            "staff member's and the room's time like a booking: 409 slot-taken if either "
            'is busy. Example: `{"service_id": "...", "starts_at": '
            '"2026-12-07T18:00:00+01:00", "staff_id": "...", "capacity": 12}`.'
        ),
        status_code=201,
        opt=STAFF,
    )
    async def create_session(
        self,
        business_id: FromPath[UUID],
        data: JSONBody[SessionCreate],
        principal: NamedDependency[Principal],
    ) -> SessionOut:
        row = await service.schedule_session(
            principal,
            business_id,
            data.service_id,
            data.starts_at,
            data.staff_id,
            resource_id=data.resource_id,
            capacity=data.capacity,
        )
        return await session_out(row)

    @get(
        "/sessions",
        summary="Scheduled classes with the seats left (availability of group services)",
    )
    async def list_sessions(
        self,
        business_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        range_from: Annotated[datetime, QueryParameter(name="from")],
        range_to: Annotated[datetime, QueryParameter(name="to")],
        service_id: FromQuery[UUID | None] = None,
        with_seats: Annotated[
            bool, QueryParameter(description="Only sessions with a seat left.")
        ] = False,
    ) -> list[SessionOut]:
        rows = await service.list_sessions(
            principal, business_id, service_id, range_from, range_to, with_seats_only=with_seats
        )
        return [await session_out(row) for row in rows]

    @get("/sessions/{session_id:uuid}", summary="A class and its seats left")
    async def get_session(
        self,
        business_id: FromPath[UUID],
        session_id: FromPath[UUID],
        principal: NamedDependency[Principal],
    ) -> SessionOut:
        return await session_out(await service.get_session(principal, business_id, session_id))

    @post(
        "/sessions/{session_id:uuid}/bookings",
        summary="Book seats in a class",
        description=(
            "Takes `seats` (party size, default 1). 409 session-full (with `seats_left` and "
            "`alternatives`: the nearest sessions with room for the party) when the class "
            "cannot take them; the database decides, under any concurrency. Example: "
            '`{"seats": 2, "customer": {"name": "Anna", "phone": "+393331234567"}}`.'
        ),
        status_code=201,
        response_headers=[ETAG_DOC],
    )
    async def book_seats(
        self,
        business_id: FromPath[UUID],
        session_id: FromPath[UUID],
        data: JSONBody[SeatsCreate],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> Response[BookingOut]:
        since = idempotency.resumed_since()
        row = None
        if since is not None:  # a retry of a request that died: did its seats commit?
            row = await made_since(
                principal,
                business_id,
                since,
                session_id=session_id,
                seats=data.seats,
                phone=data.customer.phone,
            )
        if row is None:
            row, _ = await service.book_seats(
                principal,
                business_id,
                session_id,
                data.seats,
                CustomerInput(data.customer.name, data.customer.phone, data.customer.locale),
                channel=data.channel,
                notes=data.notes,
            )
        return await booking_response(
            row, status_code=201, manage_token=make_booking_token(settings.secret_key, row["id"])
        )

    @post(
        "/sessions/{session_id:uuid}/holds",
        summary="Hold seats in a class while the customer checks out",
        description=(
            "The seats are taken for the business's hold TTL; confirm with "
            "POST /v1/holds/{id}/confirm, give back with /release. Expired holds give "
            "their seats back."
        ),
        status_code=201,
    )
    async def hold_seats(
        self,
        business_id: FromPath[UUID],
        session_id: FromPath[UUID],
        data: JSONBody[SeatsHold],
        principal: NamedDependency[Principal],
    ) -> SeatsHeld:
        row, token = await service.book_seats(
            principal, business_id, session_id, data.seats, None, channel=data.channel, hold=True
        )
        assert token is not None
        tz = await business_zone(business_id)
        return SeatsHeld(
            hold=booking_out(row, tz),
            hold_token=token,
            expires_at=row["hold_expires_at"].astimezone(tz),
        )

    @post(
        "/sessions/{session_id:uuid}/cancel",
        summary="Cancel a class (staff): every attendee gets seats held in the next classes",
        description=(
            "One transaction: the session's staff and room are released and seats merely "
            "held are released (`cancelled_booking_ids`). Each attendee's booking is marked "
            "at risk and gets a reschedule offer holding the party's seats in up to three "
            "next sessions of the same class with room (`offers`; the held seats count "
            "against those sessions' capacity like any hold). The customer is sent the "
            "offer by SMS; accepting one (`POST /v1/offers/{id}/accept`) moves the booking "
            "there, expiry gives the held seats back."
        ),
        status_code=200,
        opt=STAFF,
    )
    async def cancel_session(
        self,
        business_id: FromPath[UUID],
        session_id: FromPath[UUID],
        data: JSONBody[SessionCancel],
        principal: NamedDependency[Principal],
    ) -> SessionCancelled:
        outcome = await service.cancel_session(principal, business_id, session_id, data.reason)
        answer = SessionCancelled(
            session=await session_out(outcome.session),
            cancelled_booking_ids=outcome.released,
            affected_booking_ids=outcome.affected,
            offers=[offer_out(offer) for offer in outcome.offers],
        )
        return localize(answer, await business_zone(business_id))


class SeatMoveController(Controller):
    path = "/v1/bookings"
    tags = ["sessions"]

    @post(
        "/{booking_id:uuid}/session",
        summary="Move a seat booking to another class (or change the party size)",
        description=(
            "One UPDATE: the seats in the old session are released and those in the new one "
            "taken by the same statement. The change policy applies as for any change."
        ),
        status_code=200,
        response_headers=[ETAG_DOC],
    )
    async def move_seats(
        self,
        booking_id: FromPath[UUID],
        data: JSONBody[SeatsMove],
        principal: NamedDependency[Principal],
        if_match: IfMatch = None,
    ) -> Response[BookingOut]:
        row = await service.move_seat_booking(
            principal,
            booking_id,
            data.session_id,
            seats=data.seats,
            override_reason=data.override_reason,
            expected_version=parse_if_match(if_match),
        )
        return await booking_response(row)
