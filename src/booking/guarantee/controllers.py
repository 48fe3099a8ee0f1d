"""HTTP for the guarantee: calendar changes that lose slots, offers, waitlist, promises,
and the front desk's risk view. Parse, authorize, call one service function, shape."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from booking.access.guards import requires
from booking.access.principal import Principal
from booking.bookings.controllers import etag
from booking.bookings.schemas import booking_out
from booking.guarantee import accept, offers, promises, risk, waitlist
from booking.guarantee.schemas import (
    KindCounts,
    LostSlotOut,
    OfferAccept,
    OfferAccepted,
    OfferOut,
    PromiseOut,
    PromiseStats,
    RiskView,
    StaffDeactivate,
    TimeOffCreate,
    WaitlistJoin,
    WaitlistOut,
    at_risk_out,
    offer_out,
    waitlist_out,
)
from booking.wire_time import business_zone, localize

STAFF_ONLY = requires(kinds=("admin", "staff"))


async def _lost_slot_out(business_id: UUID, outcome: offers.LostSlotOutcome) -> LostSlotOut:
    answer = LostSlotOut(
        affected_booking_ids=outcome.affected,
        offers=[offer_out(o) for o in outcome.offers],
        time_off_id=outcome.time_off["id"] if outcome.time_off else None,
        staff_id=outcome.staff["id"] if outcome.staff else None,
    )
    return localize(answer, await business_zone(business_id))


class StaffAvailabilityController(Controller):
    path = "/v1/businesses/{business_id:uuid}/staff/{staff_id:uuid}"
    tags = ["guarantee"]

    @post(
        "/time-off",
        summary="Add time off or sick leave; lost bookings get reschedule offers at once",
        description=(
            "Managers only. In the same transaction every pending or confirmed booking the "
            "time off overlaps is marked at risk and gets an offer of up to three alternatives "
            "(same service, any eligible staff, nearest first), each held until the offer "
            "expires (2 h, never after the appointment). The customer is told by SMS."
        ),
        status_code=201,
        opt=STAFF_ONLY,
    )
    async def add_time_off(
        self,
        business_id: FromPath[UUID],
        staff_id: FromPath[UUID],
        data: JSONBody[TimeOffCreate],
        principal: NamedDependency[Principal],
    ) -> LostSlotOut:
        outcome = await offers.add_time_off(
            principal,
            business_id,
            staff_id,
            data.starts_at,
            data.ends_at,
            reason=data.reason,
            kind=data.kind,
        )
        return await _lost_slot_out(business_id, outcome)

    @post(
        "/deactivate",
        summary="Take a member of staff off the rota; their future bookings get offers",
        status_code=200,
        opt=STAFF_ONLY,
    )
    async def deactivate(
        self,
        business_id: FromPath[UUID],
        staff_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        data: JSONBody[StaffDeactivate | None] = None,
    ) -> LostSlotOut:
        outcome = await offers.deactivate_staff(
            principal, business_id, staff_id, reason=data.reason if data else ""
        )
        return await _lost_slot_out(business_id, outcome)


class OfferController(Controller):
    path = "/v1"
    tags = ["guarantee"]

    @get("/offers/{offer_id:uuid}", summary="A reschedule offer and its held options")
    async def get_offer(
        self, offer_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> OfferOut:
        offer = await offers.get_offer(principal, offer_id)
        return localize(offer_out(offer), await business_zone(offer["business_id"]))

    @post(
        "/offers/{offer_id:uuid}/accept",
        summary="Take one of the held options: the booking moves there atomically",
        description=(
            "The same booking (id, reference code) moves into the chosen time; its version "
            "increases and the other held options are released. 410 once the offer expired; "
            "409 if it was already decided. A customer uses the booking link as Bearer token."
        ),
        status_code=200,
    )
    async def accept(
        self,
        offer_id: FromPath[UUID],
        data: JSONBody[OfferAccept],
        principal: NamedDependency[Principal],
    ) -> Response[OfferAccepted]:
        booking, offer = await accept.accept_offer(principal, offer_id, data.option)
        tz = await business_zone(booking["business_id"])
        return Response(
            OfferAccepted(booking=booking_out(booking, tz), offer=localize(offer_out(offer), tz)),
            headers={"ETag": etag(booking["version"])},
        )

    @post(
        "/bookings/{booking_id:uuid}/waitlist",
        summary="Ask to be offered an earlier time if one frees up",
        description=(
            "The window defaults to now until the booking's own start. A freed time is held "
            "for the first waiting customer for 15 minutes, then offered to the next."
        ),
        status_code=201,
    )
    async def join_waitlist(
        self,
        booking_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        data: JSONBody[WaitlistJoin | None] = None,
    ) -> WaitlistOut:
        entry = await waitlist.join_waitlist(
            principal,
            booking_id,
            earliest=data.earliest if data else None,
            latest=data.latest if data else None,
        )
        return localize(waitlist_out(entry), await business_zone(entry["business_id"]))

    @post(
        "/bookings/{booking_id:uuid}/waitlist/leave",
        summary="Stop waiting for an earlier time",
        status_code=200,
    )
    async def leave_waitlist(
        self, booking_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> dict[str, bool]:
        return {"left": await waitlist.leave_waitlist(principal, booking_id)}


class GuaranteeDeskController(Controller):
    path = "/v1/businesses/{business_id:uuid}"
    tags = ["guarantee"]

    @get(
        "/promises/stats",
        summary="Promises kept, broken and open; the kept rate",
        opt=STAFF_ONLY,
    )
    async def promise_stats(
        self, business_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> PromiseStats:
        stats = await promises.stats(principal, business_id)
        by_kind = {kind: KindCounts(**counts) for kind, counts in stats.pop("by_kind").items()}
        return localize(PromiseStats(**stats, by_kind=by_kind), await business_zone(business_id))

    @get(
        "/front-desk/risk",
        summary="Today's at-risk bookings, open offers and promises due soon",
        opt=STAFF_ONLY,
    )
    async def risk(
        self,
        business_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        due_within_minutes: Annotated[int, QueryParameter(ge=1, le=1440)] = 120,
        day: Annotated[
            date | None,
            QueryParameter(description="Local date (default: today in the business zone)"),
        ] = None,
    ) -> RiskView:
        view = await risk.risk_view(
            principal, business_id, due_within=timedelta(minutes=due_within_minutes), day=day
        )
        tz = await business_zone(business_id)
        answer = RiskView(
            business_id=view["business_id"],
            day=view["day"],
            at_risk=[at_risk_out(row, tz) for row in view["at_risk"]],
            open_offers=[offer_out(o) for o in view["open_offers"]],
            promises_due_soon=[PromiseOut(**row) for row in view["promises_due_soon"]],
        )
        return localize(answer, tz)
