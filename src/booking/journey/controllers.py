"""HTTP for the journey: parse, authorize (in the service), shape."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from booking.access.principal import Principal
from booking.journey import timeline
from booking.journey.schemas import Journey


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
