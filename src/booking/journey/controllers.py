"""HTTP for the journey: parse, authorize (in the service), shape."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from booking.access.guards import requires
from booking.access.principal import Principal
from booking.catalog.audit import etag_of
from booking.catalog.controllers import ETAG, MANAGERS, IfMatch
from booking.errors import Forbidden
from booking.journey import feedback, metrics, settings_api, timeline
from booking.journey.schemas import FeedbackIn, FeedbackOut, Journey
from booking.journey.settings_api import FeedbackSettings, FeedbackSettingsPatch
from booking.wire_time import localize


def feedback_out(raw: dict[str, Any]) -> FeedbackOut:
    answer = msgspec.convert(raw, FeedbackOut)
    return localize(answer, ZoneInfo(raw["time_zone"]))


class JourneyController(Controller):
    path = "/v1"
    tags = ["journey"]

    @get(
        "/bookings/{booking_id:uuid}/journey",
        summary="Every touchpoint of one booking, in time order",
        description=(
            "History, SMS (queued, sent, delivered or failed with Twilio's status and error "
            "code), reminders, partner webhook deliveries, offers, waitlist, promises and "
            "feedback, each with its actor, channel and time in the business's zone. A "
            "partner sees its own bookings (and its own webhook deliveries); a booking link "
            "sees a friendly subset (`audience: customer`)."
        ),
    )
    async def get_journey(
        self, booking_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> Journey:
        return await timeline.booking_journey(principal, booking_id)

    @get("/bookings/{booking_id:uuid}/feedback", summary="The customer's feedback on the visit")
    async def get_feedback(
        self, booking_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> FeedbackOut:
        return feedback_out(await feedback.booking_feedback(principal, booking_id))

    @post(
        "/bookings/{booking_id:uuid}/feedback",
        summary="The customer answers (their booking link only); the first answer counts",
        status_code=200,
    )
    async def give_feedback(
        self,
        booking_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        data: JSONBody[FeedbackIn],
    ) -> FeedbackOut:
        if principal.kind != "customer" or principal.booking_id != booking_id:
            await feedback.booking_feedback(principal, booking_id)  # 404 for strangers
            raise Forbidden("Only the customer answers, from their booking link.")
        await feedback.answer(booking_id, data.score, data.comment)
        return feedback_out(await feedback.booking_feedback(principal, booking_id))

    @post(
        "/bookings/{booking_id:uuid}/feedback/callback",
        summary="Staff called the customer back after a low score (keeps the promise)",
        status_code=200,
    )
    async def called_back(
        self, booking_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> FeedbackOut:
        return feedback_out(await feedback.record_callback(principal, booking_id))


class JourneyMetricsController(Controller):
    path = "/v1/businesses/{business_id:uuid}/journey"
    tags = ["journey"]

    @get(
        "/metrics",
        summary="Journey metrics of the business, per day and in total",
        description=(
            "`from` and `to` are days in the business's zone (both included, at most 92). "
            "A booking counts on the day of its appointment. `counts` says what each figure "
            "counts. Staff and admin keys only (a partner sees its own bookings' journeys, "
            "not the business's figures)."
        ),
        opt=requires(kinds=("admin", "staff")),
    )
    async def get_metrics(
        self,
        business_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        first: Annotated[date, QueryParameter(name="from")],
        last: Annotated[date, QueryParameter(name="to")],
    ) -> dict[str, Any]:
        return await metrics.journey_metrics(principal, business_id, first, last)

    @get(
        "/feedback-settings",
        summary="The feedback question's wording (IT/EN), delay and callback time",
        description=(
            "`delay_minutes` after a completed visit the question is sent; a score of 2 or "
            "less is a promise to call back within `callback_within_minutes`. `wording`: the "
            "business's own text per language (null: the built-in text in `built_in`)."
        ),
        opt=MANAGERS,
        response_headers=[ETAG],
    )
    async def get_feedback_settings(
        self, business_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> Response[FeedbackSettings]:
        out = await settings_api.get_settings(principal, business_id)
        return Response(out, headers={"ETag": etag_of(out)})

    @patch(
        "/feedback-settings",
        summary="Change the feedback wording, delay or callback time (managers)",
        description=(
            "Fields left out stay as they are; a language set to null goes back to the "
            "built-in text. Texts use only {business}, {name}, {service}, {link} (else 422). "
            "Send the ETag you read in If-Match (412 when it changed). Audited "
            "(GET .../audit?entity=business)."
        ),
        opt=MANAGERS,
        response_headers=[ETAG],
    )
    async def patch_feedback_settings(
        self,
        business_id: FromPath[UUID],
        data: JSONBody[FeedbackSettingsPatch],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[FeedbackSettings]:
        out = await settings_api.patch_settings(principal, business_id, data, if_match)
        return Response(out, headers={"ETag": etag_of(out)})
