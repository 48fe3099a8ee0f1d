"""HTTP for a customer's personal data (GDPR): find, export, erase. Managers only.

Parse, call one service function, shape. See :mod:`booking.privacy.service`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from msgspec import Struct

from booking.access.guards import requires
from booking.access.principal import Principal
from booking.privacy import service as privacy
from booking.wire_time import business_zone, localize

MANAGERS = requires(kinds=("admin", "staff"))  # the service checks the manager role


class CustomerOut(Struct):
    id: UUID
    name: str
    phone: str
    locale: str
    sms_consent: bool
    created_at: datetime
    erased_at: datetime | None


class ErasureOut(Struct):
    customer_id: UUID
    erased_at: datetime
    counts: dict[str, int]


class CustomerController(Controller):
    path = "/v1/businesses/{business_id:uuid}/customers"
    tags = ["customers"]

    @get(summary="Find a customer by phone (managers)", opt=MANAGERS)
    async def find_customers(
        self,
        business_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        phone: Annotated[
            str | None, QueryParameter(description="E.164, e.g. +393331234567")
        ] = None,
    ) -> list[CustomerOut]:
        rows = await privacy.find_customers(principal, business_id, phone)
        out = [CustomerOut(**{k: row[k] for k in CustomerOut.__struct_fields__}) for row in rows]
        return localize(out, await business_zone(business_id))

    @get(
        "/{customer_id:uuid}/export",
        summary="Everything held about a customer, as JSON (managers; logged)",
        description=(
            "The customer, their consents, bookings with their history, offers and their "
            "options, waitlist entries, reminders, promises, and every SMS sent and received. "
            "Times in the business's zone. The export is recorded in the audit trail."
        ),
        opt=MANAGERS,
    )
    async def export_customer(
        self,
        business_id: FromPath[UUID],
        customer_id: FromPath[UUID],
        principal: NamedDependency[Principal],
    ) -> dict[str, Any]:
        document = await privacy.export_customer(principal, business_id, customer_id)
        return localize(document, await business_zone(business_id))

    @post(
        "/{customer_id:uuid}/erase",
        summary="Erase a customer's personal data, keeping the records (managers; logged)",
        description=(
            "Name, phone, SMS bodies and booking notes are anonymised; bookings keep their "
            "times, history and counts. An open offer is withdrawn (its holds released), "
            "open promises closed, reminders and pending SMS skipped. Idempotent."
        ),
        status_code=200,
        opt=MANAGERS,
    )
    async def erase_customer(
        self,
        business_id: FromPath[UUID],
        customer_id: FromPath[UUID],
        principal: NamedDependency[Principal],
    ) -> ErasureOut:
        result = await privacy.erase_customer(principal, business_id, customer_id)
        return localize(ErasureOut(**result), await business_zone(business_id))
