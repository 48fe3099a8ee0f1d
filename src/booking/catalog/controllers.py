"""HTTP for the catalog and settings: businesses, staff, working hours and dated
exceptions, services, and their audit trail. Parse, call one service function, shape.

Reads answer an ``ETag`` (a hash of the representation); changes honour ``If-Match``
(412 when it is not the current ETag). Changes are for managers of the business and
admins; only admins create businesses. A change that strands bookings answers them in
``stranded`` (they are at risk and were offered alternatives in the same transaction).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, TypeVar
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, patch, post, put
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from booking import db
from booking.access.guards import requires
from booking.access.principal import Principal
from booking.catalog import hours, service
from booking.catalog.audit import AUDIT_PAGE, entries, etag_of
from booking.catalog.schemas import (
    AuditEntry,
    BusinessChanged,
    BusinessCreate,
    BusinessOut,
    BusinessPatch,
    ExceptionChanged,
    ExceptionOut,
    ExceptionPut,
    HoursChanged,
    HoursOut,
    ServiceChanged,
    ServiceCreate,
    ServiceOut,
    ServicePatch,
    StaffChanged,
    StaffCreate,
    StaffOut,
    StaffPatch,
    StrandedBooking,
    WeekHours,
)
from booking.wire_time import business_zone, localize

MANAGERS = requires(kinds=("admin", "staff"))  # the service checks the manager role
ADMINS = requires(kinds=("admin",))
ETAG = ResponseHeader(
    name="ETag",
    description="A hash of this representation; send it back in If-Match to change it.",
    documentation_only=True,
)
IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        required=False,
        description="The ETag you read; the change fails with 412 if it is no longer current.",
    ),
]
STRANDED_DOC = (
    " Bookings the change leaves outside working hours (or with staff who no longer offer "
    "their service) are marked at risk and offered held alternatives in the same "
    "transaction, as with time off; the answer lists them in `stranded`."
)

T = TypeVar("T", bound=msgspec.Struct)


async def zoned(business_id: UUID, stranded: list[StrandedBooking]) -> list[StrandedBooking]:
    """Stranded bookings' times in the business's zone, like every time on the wire."""
    return localize(stranded, await business_zone(business_id))


def tagged(body: T, etag_from: msgspec.Struct, status_code: int = 200) -> Response[T]:
    return Response(body, status_code=status_code, headers={"ETag": etag_of(etag_from)})


class BusinessController(Controller):
    path = "/v1/businesses"
    tags = ["catalog"]

    @post(
        summary="Create a business (admins)",
        description="Time zone: an IANA name; on_duty_phone: E.164. Defaults as shown.",
        status_code=201,
        opt=ADMINS,
        response_headers=[ETAG],
    )
    async def create_business(
        self, data: JSONBody[BusinessCreate], principal: NamedDependency[Principal]
    ) -> Response[BusinessOut]:
        out = await service.create_business(principal, data)
        return tagged(out, out, 201)

    @get(summary="Businesses you can see (admins: all)", opt=MANAGERS)
    async def list_businesses(self, principal: NamedDependency[Principal]) -> list[BusinessOut]:
        return await service.list_businesses(principal)

    @get(
        "/{business_id:uuid}",
        summary="A business and all its settings",
        description="The on-duty phone is shown to the business's staff only.",
        response_headers=[ETAG],
    )
    async def get_business(
        self, business_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> Response[BusinessOut]:
        out = await service.get_business(principal, business_id)
        return tagged(out, out)

    @patch(
        "/{business_id:uuid}",
        summary="Change a business's settings (managers)",
        description="Fields left out stay as they are." + STRANDED_DOC,
        opt=MANAGERS,
        response_headers=[ETAG],
    )
    async def patch_business(
        self,
        business_id: FromPath[UUID],
        data: JSONBody[BusinessPatch],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[BusinessChanged]:
        out, stranded = await service.patch_business(principal, business_id, data, if_match)
        # The business's (perhaps new) zone, straight from the answer.
        return tagged(
            BusinessChanged(business=out, stranded=localize(stranded, out.time_zone)), out
        )

    @get(
        "/{business_id:uuid}/audit",
        summary="Who changed what in the catalog and settings, newest first",
        opt=MANAGERS,
    )
    async def audit(
        self,
        business_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        entity: FromQuery[
            Literal["business", "staff", "service", "hours", "exception", "resource"] | None
        ] = None,
        entity_id: FromQuery[UUID | None] = None,
        before_id: Annotated[int | None, QueryParameter(ge=1, description="Page back")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=AUDIT_PAGE)] = 50,
    ) -> list[AuditEntry]:
        principal.require_manager(business_id)
        async with db.connection() as conn:
            rows = await entries(
                conn, business_id, entity=entity, entity_id=entity_id,
                before_id=before_id, limit=limit,
            )  # fmt: skip
        return localize([AuditEntry(**row) for row in rows], await business_zone(business_id))


class StaffController(Controller):
    path = "/v1/businesses/{business_id:uuid}/staff"
    tags = ["catalog"]

    @get(summary="Staff members")
    async def list_staff(
        self, business_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> list[StaffOut]:
        return await service.list_staff(principal, business_id)

    @post(summary="Add a member of staff (managers)", status_code=201, opt=MANAGERS)
    async def create_staff(
        self,
        business_id: FromPath[UUID],
        data: JSONBody[StaffCreate],
        principal: NamedDependency[Principal],
    ) -> Response[StaffOut]:
        out = await service.create_staff(principal, business_id, data)
        return tagged(out, out, 201)

    @get("/{staff_id:uuid}", summary="A member of staff", response_headers=[ETAG])
    async def get_staff(
        self,
        business_id: FromPath[UUID],
        staff_id: FromPath[UUID],
        principal: NamedDependency[Principal],
    ) -> Response[StaffOut]:
        out = await service.get_staff(principal, business_id, staff_id)
        return tagged(out, out)

    @patch(
        "/{staff_id:uuid}",
        summary="Rename, deactivate or reactivate a member of staff (managers)",
        description=(
            "`active: false` takes them off the rota: every future booking of theirs gets "
            "the lost-slot recovery (at risk, an offer of held alternatives, an SMS) in the "
            "same transaction, exactly as POST .../deactivate; the answer lists them."
        ),
        opt=MANAGERS,
        response_headers=[ETAG],
    )
    async def patch_staff(
        self,
        business_id: FromPath[UUID],
        staff_id: FromPath[UUID],
        data: JSONBody[StaffPatch],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[StaffChanged]:
        out, stranded = await service.patch_staff(principal, business_id, staff_id, data, if_match)
        return tagged(StaffChanged(staff=out, stranded=await zoned(business_id, stranded)), out)

    @get(
        "/{staff_id:uuid}/hours",
        summary="Weekly working hours (wall clock, business's zone)",
        response_headers=[ETAG],
    )
    async def get_hours(
        self,
        business_id: FromPath[UUID],
        staff_id: FromPath[UUID],
        principal: NamedDependency[Principal],
    ) -> Response[HoursOut]:
        out = await hours.get_hours(principal, business_id, staff_id)
        return tagged(out, out)

    @put(
        "/{staff_id:uuid}/hours",
        summary="Replace the whole week of working hours (managers)",
        description="Weekdays left out are days off; ranges on a day may not overlap."
        + STRANDED_DOC,
        opt=MANAGERS,
        response_headers=[ETAG],
    )
    async def put_hours(
        self,
        business_id: FromPath[UUID],
        staff_id: FromPath[UUID],
        data: JSONBody[WeekHours],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[HoursChanged]:
        out, stranded = await hours.set_hours(
            principal, business_id, staff_id, data, if_match, whole_week=True
        )
        return tagged(HoursChanged(hours=out, stranded=await zoned(business_id, stranded)), out)

    @patch(
        "/{staff_id:uuid}/hours",
        summary="Replace the hours of the weekdays named (managers)",
        description="Other weekdays stay as they are; `ranges: []` makes a day off." + STRANDED_DOC,
        opt=MANAGERS,
        response_headers=[ETAG],
    )
    async def patch_hours(
        self,
        business_id: FromPath[UUID],
        staff_id: FromPath[UUID],
        data: JSONBody[WeekHours],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[HoursChanged]:
        out, stranded = await hours.set_hours(
            principal, business_id, staff_id, data, if_match, whole_week=False
        )
        return tagged(HoursChanged(hours=out, stranded=await zoned(business_id, stranded)), out)

    @get("/{staff_id:uuid}/exceptions", summary="Dated exceptions to the weekly hours")
    async def list_exceptions(
        self,
        business_id: FromPath[UUID],
        staff_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        first: Annotated[
            date | None, QueryParameter(name="from", description="Default today")
        ] = None,
        last: Annotated[
            date | None, QueryParameter(name="to", description="Default a year on")
        ] = None,
    ) -> list[ExceptionOut]:
        return await hours.list_exceptions(principal, business_id, staff_id, first, last)

    @get(
        "/{staff_id:uuid}/exceptions/{day:date}",
        summary="The exception on one day (404: the weekly hours apply)",
        response_headers=[ETAG],
    )
    async def get_exception(
        self,
        business_id: FromPath[UUID],
        staff_id: FromPath[UUID],
        day: FromPath[date],
        principal: NamedDependency[Principal],
    ) -> Response[ExceptionOut]:
        out = await hours.get_exception(principal, business_id, staff_id, day)
        return tagged(out, out)

    @put(
        "/{staff_id:uuid}/exceptions/{day:date}",
        summary="Close a day, or open it with its own ranges (managers)",
        description=(
            "Replaces the weekly hours on that local date: `closed: true`, or `ranges`. "
            "201 when new, 200 when it replaced one (If-Match honoured)." + STRANDED_DOC
        ),
        status_code=200,
        opt=MANAGERS,
        response_headers=[ETAG],
    )
    async def put_exception(
        self,
        business_id: FromPath[UUID],
        staff_id: FromPath[UUID],
        day: FromPath[date],
        data: JSONBody[ExceptionPut],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[ExceptionChanged]:
        out, stranded, created = await hours.put_exception(
            principal, business_id, staff_id, day, data, if_match
        )
        return tagged(
            ExceptionChanged(exception=out, stranded=await zoned(business_id, stranded)),
            out,
            201 if created else 200,
        )

    @delete(
        "/{staff_id:uuid}/exceptions/{day:date}",
        summary="Remove an exception: the weekly hours apply again (managers)",
        description=STRANDED_DOC.strip(),
        status_code=200,
        opt=MANAGERS,
    )
    async def delete_exception(
        self,
        business_id: FromPath[UUID],
        staff_id: FromPath[UUID],
        day: FromPath[date],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> ExceptionChanged:
        stranded = await hours.delete_exception(principal, business_id, staff_id, day, if_match)
        return ExceptionChanged(exception=None, stranded=await zoned(business_id, stranded))


class ServiceController(Controller):
    path = "/v1/businesses/{business_id:uuid}/services"
    tags = ["catalog"]

    @get(summary="Services on offer and who offers them")
    async def list_services(
        self,
        business_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        include_inactive: Annotated[
            bool, QueryParameter(description="Deactivated ones too")
        ] = False,
    ) -> list[ServiceOut]:
        return await service.list_services(
            principal, business_id, include_inactive=include_inactive
        )

    @post(
        summary="Add a service (managers)",
        description="Currency: ISO 4217; staff_ids: who offers it (this business's staff).",
        status_code=201,
        opt=MANAGERS,
        response_headers=[ETAG],
    )
    async def create_service(
        self,
        business_id: FromPath[UUID],
        data: JSONBody[ServiceCreate],
        principal: NamedDependency[Principal],
    ) -> Response[ServiceOut]:
        out = await service.create_service(principal, business_id, data)
        return tagged(out, out, 201)

    @get("/{service_id:uuid}", summary="A service", response_headers=[ETAG])
    async def get_service(
        self,
        business_id: FromPath[UUID],
        service_id: FromPath[UUID],
        principal: NamedDependency[Principal],
    ) -> Response[ServiceOut]:
        out = await service.get_service(principal, business_id, service_id)
        return tagged(out, out)

    @patch(
        "/{service_id:uuid}",
        summary="Change a service, who offers it, or deactivate it (managers)",
        description=(
            "`staff_ids` replaces who offers it; `active: false` stops new bookings and "
            "keeps existing ones." + STRANDED_DOC
        ),
        opt=MANAGERS,
        response_headers=[ETAG],
    )
    async def patch_service(
        self,
        business_id: FromPath[UUID],
        service_id: FromPath[UUID],
        data: JSONBody[ServicePatch],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[ServiceChanged]:
        out, stranded = await service.patch_service(
            principal, business_id, service_id, data, if_match
        )
        return tagged(ServiceChanged(service=out, stranded=await zoned(business_id, stranded)), out)
