"""HTTP for the Actions Center booking server, REST v3: POST /v3/<Method>/ under
``/actions-center``, HTTP Basic auth (password = the partner's API key)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from asyncpg import Record
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK
from msgspec import Struct

from booking.access.guards import PUBLIC, requires
from booking.access.principal import Principal
from booking.access.service import authenticate
from booking.errors import IdempotencyInProgress, MalformedRequest, Unauthenticated
from booking.idempotency import service as idempotency
from booking.marketplace import listing, service, wire
from booking.settings import Settings

STAFF_ONLY = requires(kinds=("admin", "staff"))  # the service checks the manager role
# A call whose idempotency_token a running twin holds waits this long for the twin's
# answer, then answers 409: inside the marketplace's 4 s deadline for CreateBooking and
# UpdateBooking, so that it hears to retry.
TWIN_WAIT_SECONDS = 3.0
TWIN_POLL_SECONDS = 0.05
Method = Callable[[Principal, dict[str, Any]], Awaitable[dict[str, Any]]]
# (principal, body, the row read with the claim, Claimed.resumed_since)
Checked = Callable[
    [Principal, dict[str, Any], Record | None, datetime | None], Awaitable[dict[str, Any]]
]
Checks = Callable[[Principal, dict[str, Any]], tuple[str, tuple[Any, ...]] | None]


async def basic_principal(request: Request[Any, Any, Any]) -> Principal:
    raw = request.headers.get("authorization") or ""
    scheme, _, value = raw.partition(" ")
    if scheme.lower() != "basic":
        raise Unauthenticated("Send HTTP Basic credentials.")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8 once decoded
        raise Unauthenticated("Unreadable Basic credentials.") from None
    _user, sep, password = decoded.partition(":")
    if not sep or not password:
        raise Unauthenticated("Unreadable Basic credentials.")
    settings: Settings = request.app.state.settings
    principal = await authenticate(password, settings.link_secrets)
    if principal.kind != "partner":
        raise Unauthenticated("These credentials are not a partner's.")
    return principal


def _json(body: dict[str, Any]) -> Response[bytes]:
    return Response(
        content=wire.encode(body), status_code=HTTP_200_OK, media_type="application/json"
    )


async def _run(
    request: Request[Any, Any, Any],
    method: Method,
    *,
    idempotent: bool,
    checks: Checks | None = None,
) -> Any:
    """``checks``: what ``method`` reads first, read in the idempotency claim's own
    statement and handed to it (``method(principal, body, row, resumed_since)``), with
    the time a dead twin first claimed the token when this call took its claim over."""
    principal = await basic_principal(request)
    raw = await request.body()
    body = wire.parse_body(raw)
    token = body.get("idempotency_token") if idempotent else None
    if token is None:
        return _json(await method(principal, body))
    if not isinstance(token, str) or not 1 <= len(token) <= 255:
        raise MalformedRequest("idempotency_token must be a string.", field="idempotency_token")
    subject = f"actions-center:{principal.id}"
    path = request.url.path
    read = checks(principal, body) if checks is not None else None
    deadline = time.monotonic() + TWIN_WAIT_SECONDS
    while True:  # a concurrent twin: wait for its answer
        outcome = await idempotency.claim(subject, token, "POST", path, raw, read=read)
        if isinstance(outcome, idempotency.StoredAnswer):
            return Response(
                content=outcome.body,
                status_code=outcome.status_code,
                media_type="application/json",
            )
        if isinstance(outcome, idempotency.Claimed):
            break
        if time.monotonic() > deadline:  # 409: the v3 status for a concurrency abort
            raise IdempotencyInProgress(
                "A call with this idempotency_token is still running; retry shortly.",
                retry_after=1,
            )
        await asyncio.sleep(TWIN_POLL_SECONDS)
    try:
        if read is None:
            answer = wire.encode(await method(principal, body))
        else:
            checked = cast(Checked, method)
            answer = wire.encode(
                await checked(principal, body, outcome.read, outcome.resumed_since)
            )
    except BaseException:
        await asyncio.shield(idempotency.release(subject, token, outcome.owner))
        raise
    await idempotency.complete(subject, token, outcome.owner, 200, {}, answer)
    return Response(content=answer, status_code=HTTP_200_OK, media_type="application/json")


class ListingBody(Struct):
    partner_id: UUID
    feed_horizon_days: int = 30
    notification_base_url: str | None = None


class ListingOut(Struct):
    business_id: UUID
    partner_id: UUID
    feed_horizon_days: int
    notification_base_url: str | None


class ListingController(Controller):
    """A manager lists the business on the Actions Center for a partner."""

    path = "/v1/businesses/{business_id:uuid}/marketplaces/actions-center"
    tags = ["marketplace"]

    @put(summary="List the business on the Actions Center (managers)", opt=STAFF_ONLY)
    async def enable(
        self,
        business_id: FromPath[UUID],
        data: JSONBody[ListingBody],
        principal: NamedDependency[Principal],
    ) -> ListingOut:
        row = await listing.enable(
            principal,
            business_id,
            data.partner_id,
            horizon_days=data.feed_horizon_days,
            notification_base_url=data.notification_base_url,
        )
        return ListingOut(**row)

    @delete("/{partner_id:uuid}", summary="Stop listing the business (managers)", opt=STAFF_ONLY)
    async def disable(
        self,
        business_id: FromPath[UUID],
        partner_id: FromPath[UUID],
        principal: NamedDependency[Principal],
    ) -> None:
        await listing.disable(principal, business_id, partner_id)


class ActionsCenterController(Controller):
    path = "/actions-center/v3"
    tags = ["marketplace"]
    opt = PUBLIC  # its own credential: HTTP Basic, checked by every handler

    @get("/feeds/{name:str}", summary="The partner's merchant, service or availability feed")
    async def feed(self, request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
        principal = await basic_principal(request)
        assert principal.partner_id is not None
        settings: Settings = request.app.state.settings
        kind = name.removesuffix(".json")
        body = await listing.read_feed(settings.marketplace_feed_dir, principal.partner_id, kind)
        return Response(content=body, media_type="application/json")

    @get("/HealthCheck/", summary="HealthCheck (v3)")
    async def health_check(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        await basic_principal(request)
        return {}

    @post("/BatchAvailabilityLookup/", summary="BatchAvailabilityLookup (v3)", status_code=200)
    async def batch_availability_lookup(self, request: Request[Any, Any, Any]) -> Any:
        # Thousands of slots a call: read, check and answer them without a dict per slot.
        principal = await basic_principal(request)
        merchant, slots, sent = wire.parse_lookup(await request.body())
        free = await service.lookup(principal, merchant, slots)
        return Response(
            content=wire.lookup_answer(sent, free),
            status_code=HTTP_200_OK,
            media_type="application/json",
        )

    @post("/CheckAvailability/", summary="CheckAvailability (v3)", status_code=200)
    async def check_availability(self, request: Request[Any, Any, Any]) -> Any:
        async def method(principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
            slot = wire.parse_slot_time(body.get("slot"))
            assert slot.merchant_id is not None
            (free,) = await service.lookup(principal, slot.merchant_id, [slot])
            return {"slot": body["slot"], "count_available": 1 if free else 0}

        return await _run(request, method, idempotent=False)

    @post("/CreateLease/", summary="CreateLease (v3): a hold", status_code=200)
    async def create_lease(self, request: Request[Any, Any, Any]) -> Any:
        return await _run(request, service.create_lease, idempotent=False)

    @post("/CreateBooking/", summary="CreateBooking (v3)", status_code=200)
    async def create_booking(self, request: Request[Any, Any, Any]) -> Any:
        return await _run(request, service.create, idempotent=True, checks=service.create_checks)

    @post("/UpdateBooking/", summary="UpdateBooking (v3): cancel or reschedule", status_code=200)
    async def update_booking(self, request: Request[Any, Any, Any]) -> Any:
        return await _run(request, service.update, idempotent=True)

    @post("/GetBookingStatus/", summary="GetBookingStatus (v3)", status_code=200)
    async def get_booking_status(self, request: Request[Any, Any, Any]) -> Any:
        return await _run(request, service.status, idempotent=False)

    @post("/ListBookings/", summary="ListBookings (v3)", status_code=200)
    async def list_bookings(self, request: Request[Any, Any, Any]) -> Any:
        return await _run(request, service.list_for_user, idempotent=False)
