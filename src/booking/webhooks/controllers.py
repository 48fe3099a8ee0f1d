"""HTTP for partner webhooks: endpoints, their delivery log, redelivery."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from booking.access.guards import requires
from booking.access.principal import Principal
from booking.webhooks import service
from booking.webhooks.jobs import enqueue
from booking.webhooks.schemas import (
    DeliveryOut,
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    SecretRotate,
    delivery_out,
    endpoint_out,
)
from booking.wire_time import common_zone

MANAGE = requires("webhooks:manage", kinds=("partner",))


async def _zone(principal: Principal) -> ZoneInfo:
    """Endpoints belong to a partner, not a business: the zone of the key's businesses."""
    return await common_zone(principal.business_ids)


class WebhookEndpointController(Controller):
    path = "/v1/webhook-endpoints"
    tags = ["webhooks"]

    @post(
        summary="Register an endpoint for events (the signing secret is in this answer only)",
        description=(
            "Deliveries follow Standard Webhooks: headers webhook-id, webhook-timestamp and "
            "webhook-signature (v1, HMAC-SHA256 of `id.timestamp.body` with the secret). "
            "You receive events of bookings your keys may see. Failed deliveries are retried "
            "after 30 s, 2 min, 10 min, 1 h, 3 h, 6 h and 12 h; an endpoint failing for 12 h "
            "whose delivery exhausted its retries is disabled."
        ),
        status_code=201,
        opt=MANAGE,
    )
    async def create_endpoint(
        self, data: JSONBody[EndpointCreate], principal: NamedDependency[Principal]
    ) -> EndpointCreated:
        row, secret = await service.create_endpoint(
            principal, data.url, list(data.event_types), data.description
        )
        return EndpointCreated(secret=secret, endpoint=endpoint_out(row, await _zone(principal)))

    @get(summary="Your endpoints (never their secrets)", opt=MANAGE)
    async def list_endpoints(self, principal: NamedDependency[Principal]) -> list[EndpointOut]:
        tz = await _zone(principal)
        return [endpoint_out(row, tz) for row in await service.list_endpoints(principal)]

    @get("/{endpoint_id:uuid}", summary="One endpoint", opt=MANAGE)
    async def get_endpoint(
        self, endpoint_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> EndpointOut:
        return endpoint_out(
            await service.get_endpoint(principal, endpoint_id), await _zone(principal)
        )

    @delete("/{endpoint_id:uuid}", summary="Stop sending to this endpoint", opt=MANAGE)
    async def delete_endpoint(
        self, endpoint_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> None:
        await service.delete_endpoint(principal, endpoint_id)

    @post(
        "/{endpoint_id:uuid}/rotate-secret",
        summary="A new signing secret (in this answer only); the old one signs too for a while",
        description=(
            "During the overlap (`overlap_hours`, default 24, at most 168) every delivery "
            "carries two signatures in `webhook-signature` (`v1,<new> v1,<old>`); a Standard "
            "Webhooks receiver accepts either. Switch your receiver to the new secret within "
            "the overlap; after it only the new one signs."
        ),
        status_code=200,
        opt=MANAGE,
    )
    async def rotate_secret(
        self,
        endpoint_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        data: JSONBody[SecretRotate],
    ) -> EndpointCreated:
        row, secret = await service.rotate_secret(
            principal, endpoint_id, timedelta(hours=data.overlap_hours)
        )
        return EndpointCreated(secret=secret, endpoint=endpoint_out(row, await _zone(principal)))

    @post(
        "/{endpoint_id:uuid}/enable",
        summary="Re-enable an endpoint that was disabled after persistent failure",
        status_code=200,
        opt=MANAGE,
    )
    async def enable_endpoint(
        self, endpoint_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> EndpointOut:
        return endpoint_out(
            await service.enable_endpoint(principal, endpoint_id), await _zone(principal)
        )

    @get("/{endpoint_id:uuid}/deliveries", summary="Delivery log, newest first", opt=MANAGE)
    async def list_deliveries(
        self,
        endpoint_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        status: FromQuery[Literal["pending", "succeeded", "failed"] | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> list[DeliveryOut]:
        rows = await service.list_deliveries(principal, endpoint_id, status=status, limit=limit)
        tz = await _zone(principal)
        return [await delivery_out(row, tz) for row in rows]


class WebhookDeliveryController(Controller):
    path = "/v1/webhook-deliveries"
    tags = ["webhooks"]

    @post(
        "/{delivery_id:uuid}/redeliver",
        summary="Send a delivery again now (fresh retry schedule)",
        status_code=202,
        opt=MANAGE,
    )
    async def redeliver(
        self,
        delivery_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        request: Request[Any, Any, Any],
    ) -> DeliveryOut:
        row, job = await service.redeliver(principal, delivery_id)
        await enqueue(request.app.state.redis, [job])  # after the commit, never inside it
        return await delivery_out(row, await _zone(principal))
