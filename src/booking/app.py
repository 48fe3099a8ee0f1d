"""create_app(): plugins, lifespan, routes, error mapping. No I/O at import time."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Tag

from booking import db
from booking.access import key_use
from booking.access.controllers import ApiKeyController
from booking.access.dependencies import provide_principal
from booking.api_plugin import AccessPlugin, GuardsInOnePass
from booking.apidocs import LocalSwaggerRenderPlugin, home
from booking.availability.controllers import AvailabilityController
from booking.bookings.controllers import BookingController, FrontDeskController, HoldController
from booking.calendars.connection_controllers import CalendarConnectionController
from booking.calendars.controllers import CalendarFeedController, FeedController
from booking.catalog.controllers import BusinessController, ServiceController, StaffController
from booking.console.controllers import ConsoleSignInController, StaffSignInController
from booking.console.web import console_static_files
from booking.desk.controllers import DeskController
from booking.guarantee.controllers import (
    GuaranteeDeskController,
    OfferController,
    StaffAvailabilityController,
)
from booking.headers import add_security_headers
from booking.health import health, ready
from booking.journey.controllers import JourneyController, JourneyMetricsController
from booking.journey.page import JourneyPageController
from booking.journey.replies import on_unmatched_sms
from booking.marketplace.controllers import ActionsCenterController, ListingController
from booking.notifications.controllers import MessageController, TwilioWebhookController
from booking.privacy.controllers import CustomerController
from booking.problems import EXCEPTION_HANDLERS, document_problems
from booking.resources.controllers import ResourceController, ServiceNeedsController
from booking.selfservice.controllers import SelfServiceController
from booking.sequences.controllers import SequenceController
from booking.series.controllers import SeriesController
from booking.serving import keep_freed_memory
from booking.sessions.controllers import SeatMoveController, SessionController
from booking.settings import Settings, get_settings
from booking.telemetry.endpoint import metrics_endpoint
from booking.telemetry.logs import configure_logging
from booking.telemetry.requests import RequestTelemetry
from booking.webhooks.controllers import (
    WebhookDeliveryController,
    WebhookEndpointController,
)
from booking.wire_rules import StrictStructSchemaPlugin, WireRulesPlugin, learn_allow

log = logging.getLogger("booking.app")

TAGS = [
    Tag(name="availability", description="Free slots in the business's time zone."),
    Tag(name="holds", description="Conflict-free slot locking during checkout."),
    Tag(name="bookings", description="Bookings, their status and atomic ticket changes."),
    Tag(name="front desk", description="Counter workflows: rebook in two calls."),
    Tag(name="catalog", description="Businesses, services and staff."),
    Tag(name="operations", description="Health and readiness."),
    Tag(name="access", description="API keys: issue (shown once), list, revoke."),
    Tag(name="webhooks", description="Signed partner webhooks (Standard Webhooks)."),
    Tag(name="journey", description="One timeline per booking; feedback; journey metrics."),
    Tag(
        name="guarantee",
        description="Lost-slot reschedule offers, earlier-slot waitlist, promises, risk view.",
    ),
    Tag(name="calendars", description="Staff calendar feeds out, busy times in."),
    Tag(name="marketplace", description="Actions Center booking server (REST v3)."),
]


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Booking and appointment-guarantee API",
        version="1.0.0",
        description=(
            "Never double-books a member of staff (PostgreSQL enforces it), holds slots during "
            "checkout, and changes bookings atomically. Errors are RFC 9457 problem documents "
            "with a stable `type`.\n\n"
            "**Times.** Every timestamp in every answer, partner webhook payload and history "
            "entry (including its `changes`) is RFC 3339 with the local offset of the "
            "business it belongs to, e.g. `2026-12-02T10:00:00+01:00` (and "
            "`2026-06-02T10:00:00+02:00` in summer: the offset follows the date). `Z` appears "
            "only for a business whose offset is zero. Bookings, availability and webhook "
            "`data` also name the zone (`time_zone`, IANA, e.g. `Europe/Rome`). Objects that "
            "span businesses (API keys, webhook endpoints) use their businesses' zone when "
            "they share one, else UTC, and say which in `time_zone`. Requests accept any "
            "offset (`Z`, `+01:00`, `-05:00`): the instant is what counts."
        ),
        path="/schema",
        tags=TAGS,
        components=Components(
            security_schemes={
                "apiKey": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description=(
                        "A partner, staff or app API key (`bk_...`), or a customer's "
                        "per-booking token (`bt....`)."
                    ),
                )
            }
        ),
        security=[{"apiKey": []}],
        # Swagger UI first: it is the page at /schema; its assets are served by this app.
        render_plugins=[LocalSwaggerRenderPlugin(), JsonRenderPlugin(), YamlRenderPlugin()],
    )


def create_app(settings: Settings | None = None) -> Litestar:
    config = settings or get_settings()

    @asynccontextmanager
    async def database(app: Litestar) -> AsyncIterator[None]:
        await db.start_pool(config.database_url, config.db_pool_min, config.db_pool_max)
        try:
            yield
        finally:
            await key_use.drain()  # the last coalesced api_key.last_used_at
            await db.close_pool()

    @asynccontextmanager
    async def redis(app: Litestar) -> AsyncIterator[None]:
        pool: ArqRedis = await create_pool(RedisSettings.from_dsn(config.redis_url), retry=1)
        app.state.redis = pool
        try:
            yield
        finally:
            await pool.aclose()

    def provide_settings() -> Settings:
        return config

    app = Litestar(
        route_handlers=[
            home,
            health,
            ready,
            metrics_endpoint,
            AvailabilityController,
            HoldController,
            BookingController,
            FrontDeskController,
            BusinessController,
            StaffController,
            ServiceController,
            ResourceController,
            ServiceNeedsController,
            CustomerController,
            MessageController,
            TwilioWebhookController,
            ApiKeyController,
            WebhookEndpointController,
            WebhookDeliveryController,
            StaffAvailabilityController,
            OfferController,
            GuaranteeDeskController,
            SelfServiceController,
            StaffSignInController,
            ConsoleSignInController,
            DeskController,
            console_static_files(),
            JourneyController,
            JourneyMetricsController,
            JourneyPageController,
            CalendarFeedController,
            FeedController,
            CalendarConnectionController,
            SessionController,
            SeatMoveController,
            SeriesController,
            SequenceController,
            ActionsCenterController,
            ListingController,
        ],
        dependencies={
            "principal": Provide(provide_principal),
            "settings": Provide(provide_settings, sync_to_thread=False),
        },
        lifespan=[database, redis],
        # Every answer, the router's 404/405 and errors included, gets the security headers.
        before_send=[add_security_headers],
        # Authorization guard, rate limits, Idempotency-Key; then the wire rules (closed
        # request schemas, complete OPTIONS Allow, RFC 3339 times only: booking.wire_rules).
        plugins=[AccessPlugin(), WireRulesPlugin(), StrictStructSchemaPlugin(), GuardsInOnePass()],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi_config(),
        cors_config=CORSConfig(allow_origins=["*"], expose_headers=["ETag", "Retry-After"]),
        debug=config.debug,
        # Logging is configured once per process by booking.telemetry.logs (structlog).
        logging_config=None,
    )
    app.state.settings = config
    learn_allow(app)  # OPTIONS answers list the final route table's methods
    # Outermost: a request id, the access log line and the request metrics for every
    # request, 404s and problems from any layer included (booking.telemetry.requests).
    app.asgi_handler = RequestTelemetry(
        app.asgi_handler, access_log=config.access_log, metrics=config.metrics_enabled
    )
    # Inbound SMS that are no keyword: feedback answers, then the guarantee (offer replies,
    # owed answers); notifications sits below both and imports neither.
    app.state.on_unmatched_sms = on_unmatched_sms
    document_problems(app.openapi_schema)  # errors are problem+json in the document too
    return app


def asgi() -> Any:
    """Factory for uvicorn: ``uvicorn --factory booking.app:asgi``."""
    settings = get_settings()
    settings.check_deployable()  # never serve production with the public default secret
    configure_logging(settings.log_level, settings.log_format, "api")
    app = create_app(settings)
    # The server's long-lived objects (modules, routes, signature models, the OpenAPI
    # document) move to the permanent GC generation: a full collection under load then
    # walks only request garbage instead of pausing ~70 ms to walk them all (that pause
    # was the month search's p99; see bench/RESULTS.md, 2026-11-27).
    gc.freeze()
    keep_freed_memory()  # a 1 MB answer reuses heap pages, not fresh ones (booking.serving)
    return app
