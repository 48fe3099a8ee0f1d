"""HTTP for what a business offers: its profile, services and staff."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from msgspec import Struct

from booking import db
from booking.access.principal import Principal
from booking.errors import NotFound


class BusinessOut(Struct):
    id: UUID
    slug: str
    name: str
    time_zone: str
    locale: str
    address: str
    change_cutoff_minutes: int
    max_changes: int
    min_notice_minutes: int
    slot_step_minutes: int
    hold_ttl_seconds: int


class ServiceOut(Struct):
    id: UUID
    name: str
    duration_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    price_cents: int
    currency: str
    requires_confirmation: bool
    staff_ids: list[UUID]


class StaffOut(Struct):
    id: UUID
    name: str
    active: bool


class CatalogController(Controller):
    path = "/v1/businesses"
    tags = ["catalog"]

    @get("/{business_id:uuid}", summary="A business and its policies")
    async def get_business(
        self, business_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> BusinessOut:
        principal.require_business(business_id)
        async with db.connection() as conn:
            row = await conn.fetchrow(
                "SELECT id, slug, name, time_zone, locale, address, change_cutoff_minutes, "
                "max_changes, min_notice_minutes, slot_step_minutes, hold_ttl_seconds "
                "FROM business WHERE id = $1",
                business_id,
            )
        if row is None:
            raise NotFound("No such business.")
        return BusinessOut(**dict(row))

    @get("/{business_id:uuid}/services", summary="Services on offer and who offers them")
    async def list_services(
        self, business_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> list[ServiceOut]:
        principal.require_business(business_id)
        async with db.connection() as conn:
            rows = await conn.fetch(
                """
                SELECT s.id, s.name, s.duration_minutes, s.buffer_before_minutes,
                       s.buffer_after_minutes, s.price_cents, s.currency,
                       s.requires_confirmation,
                       ARRAY(SELECT staff_id FROM service_staff WHERE service_id = s.id
                             ORDER BY staff_id) AS staff_ids
                FROM service s WHERE s.business_id = $1 AND s.active ORDER BY s.name
                """,
                business_id,
            )
        return [ServiceOut(**dict(row)) for row in rows]

    @get("/{business_id:uuid}/staff", summary="Staff members")
    async def list_staff(
        self, business_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> list[StaffOut]:
        principal.require_business(business_id)
        async with db.connection() as conn:
            rows = await conn.fetch(
                "SELECT id, name, active FROM staff WHERE business_id = $1 ORDER BY name",
                business_id,
            )
        return [StaffOut(**dict(row)) for row in rows]
