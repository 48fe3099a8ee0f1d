"""HTTP for staff calendars: managing feeds, and the feed URL calendar apps poll."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from booking.access.guards import PUBLIC, requires
from booking.access.principal import Principal
from booking.calendars import feeds
from booking.calendars.schemas import FeedCreate, FeedIssued, FeedOut
from booking.settings import Settings
from booking.wire_time import business_zone, localize

STAFF_ONLY = requires(kinds=("admin", "staff"))  # the service checks the manager role
FEED_CACHE = {"Cache-Control": "private, max-age=300"}


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


class CalendarFeedController(Controller):
    path = "/v1/businesses/{business_id:uuid}/calendar-feeds"
    tags = ["calendars"]

    @post(
        summary="Make a private calendar feed URL (managers)",
        description=(
            "A subscribable iCalendar URL of one member of staff's or resource's bookings "
            "(`resource_id`), or of the whole business (no `resource_id`). The URL is shown "
            "once; revoke the feed to retire it. See docs/calendars.md."
        ),
        status_code=201,
        opt=STAFF_ONLY,
    )
    async def create_feed(
        self,
        business_id: FromPath[UUID],
        data: JSONBody[FeedCreate],
        principal: NamedDependency[Principal],
        request: Request[Any, Any, Any],
    ) -> FeedIssued:
        issued = await feeds.create_feed(principal, business_id, data.resource_id)
        settings: Settings = request.app.state.settings
        url = f"{settings.public_base_url}/feeds/{issued.token}.ics"
        answer = FeedIssued(
            feed=FeedOut(**issued.row),
            url=url,
            webcal_url="webcal://" + url.split("://", 1)[1],
        )
        answer.feed = localize(answer.feed, await business_zone(business_id))
        return answer

    @get(summary="Calendar feeds of the business (managers; no URLs)", opt=STAFF_ONLY)
    async def list_feeds(
        self, business_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> list[FeedOut]:
        rows = await feeds.list_feeds(principal, business_id)
        return localize([FeedOut(**row) for row in rows], await business_zone(business_id))

    @delete(
        "/{feed_id:uuid}",
        summary="Revoke a calendar feed (managers): its URL answers 404 from now on",
        status_code=200,
        opt=STAFF_ONLY,
    )
    async def revoke_feed(
        self,
        business_id: FromPath[UUID],
        feed_id: FromPath[UUID],
        principal: NamedDependency[Principal],
    ) -> FeedOut:
        row = await feeds.revoke_feed(principal, business_id, feed_id)
        return localize(FeedOut(**row), await business_zone(business_id))


class FeedController(Controller):
    path = "/feeds"
    tags = ["calendars"]

    @get(
        "/{token:str}",
        summary="A calendar feed (iCalendar), as calendar apps poll it",
        description=(
            "The token is the secret part of the feed URL. `ETag` and `If-None-Match`: an "
            "unchanged feed answers 304 with no body."
        ),
        opt=PUBLIC,
        security=[{}],
        media_type="text/calendar",
    )
    async def feed(self, token: FromPath[str], request: Request[Any, Any, Any]) -> Response[bytes]:
        found = await feeds.feed_for_token(token.removesuffix(".ics"))
        headers = {"ETag": found.etag, **FEED_CACHE}
        if _etag_matches(request.headers.get("if-none-match"), found.etag):
            return Response(b"", status_code=304, headers=headers)
        return Response(found.body, media_type="text/calendar; charset=utf-8", headers=headers)
