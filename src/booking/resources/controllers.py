"""HTTP for resources (rooms, chairs, devices) and what a service needs of them."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Response, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from booking.access.guards import requires
from booking.access.principal import Principal
from booking.catalog.controllers import ETAG, IfMatch, tagged
from booking.guarantee.schemas import offer_out
from booking.resources import service
from booking.resources.schemas import (
    ResourceChanged,
    ResourceCreate,
    ResourceOut,
    ResourcePatch,
    ServiceNeeds,
    ServiceNeedsOut,
)

MANAGERS = requires(kinds=("admin", "staff"))  # the service checks the manager role


class ResourceController(Controller):
    path = "/v1/businesses/{business_id:uuid}/resources"
    tags = ["resources"]

    @get(summary="Rooms, chairs and devices (filter by group)")
    async def list_resources(
        self,
        business_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        group: FromQuery[str | None] = None,
    ) -> list[ResourceOut]:
        rows = await service.list_resources(principal, business_id, group)
        return [ResourceOut(**row) for row in rows]

    @post(
        summary="Add a room, chair or device (managers)",
        status_code=201,
        opt=MANAGERS,
        response_headers=[ETAG],
    )
    async def create_resource(
        self,
        business_id: FromPath[UUID],
        data: JSONBody[ResourceCreate],
        principal: NamedDependency[Principal],
    ) -> Response[ResourceOut]:
        out = ResourceOut(**await service.create_resource(principal, business_id, data))
        return tagged(out, out, 201)

    @get("/{resource_id:uuid}", summary="A room, chair or device", response_headers=[ETAG])
    async def get_resource(
        self,
        business_id: FromPath[UUID],
        resource_id: FromPath[UUID],
        principal: NamedDependency[Principal],
    ) -> Response[ResourceOut]:
        out = ResourceOut(**await service.get_resource(principal, business_id, resource_id))
        return tagged(out, out)

    @patch(
        "/{resource_id:uuid}",
        summary="Rename, regroup, deactivate or reactivate a resource (managers)",
        description=(
            "`active: false` takes it out of use: every future booking holding it is marked "
            "at risk and offered held alternatives in the same transaction (the lost-slot "
            "recovery, as for staff); the answer lists them. If-Match honoured (412)."
        ),
        opt=MANAGERS,
        response_headers=[ETAG],
    )
    async def patch_resource(
        self,
        business_id: FromPath[UUID],
        resource_id: FromPath[UUID],
        data: JSONBody[ResourcePatch],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[ResourceChanged]:
        row, affected, offers = await service.patch_resource(
            principal, business_id, resource_id, data, if_match
        )
        out = ResourceOut(**row)
        changed = ResourceChanged(
            resource=out, affected_booking_ids=affected, offers=[offer_out(o) for o in offers]
        )
        return tagged(changed, out)


class ServiceNeedsController(Controller):
    path = "/v1/businesses/{business_id:uuid}/services/{service_id:uuid}/needs"
    tags = ["resources"]

    @get(summary="Which group of resources the service needs one of", response_headers=[ETAG])
    async def get_needs(
        self,
        business_id: FromPath[UUID],
        service_id: FromPath[UUID],
        principal: NamedDependency[Principal],
    ) -> Response[ServiceNeedsOut]:
        out = await service.get_service_needs(principal, business_id, service_id)
        return tagged(out, out)

    @put(
        summary="Say which group of resources the service needs one of (managers)",
        description=(
            '`resource_group: "cabin"` makes every booking of the service take a member '
            "of staff from its eligible list *and* one active resource of that group, both "
            "free together; `null` means staff only. If-Match honoured (412)."
        ),
        opt=MANAGERS,
        response_headers=[ETAG],
    )
    async def put_needs(
        self,
        business_id: FromPath[UUID],
        service_id: FromPath[UUID],
        data: JSONBody[ServiceNeeds],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[ServiceNeedsOut]:
        out = await service.set_service_needs(
            principal, business_id, service_id, data.resource_group, if_match
        )
        return tagged(out, out)
