"""Wire shapes of the resources API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from msgspec import UNSET, Meta, Struct, UnsetType

from booking.guarantee.schemas import OfferOut

Name = Annotated[str, Meta(min_length=1, max_length=200)]
Group = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"\S")]
Reason = Annotated[str, Meta(max_length=500)]


class ResourceCreate(Struct, forbid_unknown_fields=True):
    kind: Literal["room", "chair", "device"]
    name: Name
    group: Group | None = None


class ResourcePatch(Struct, forbid_unknown_fields=True):
    name: Name | UnsetType = UNSET
    group: Group | UnsetType | None = UNSET
    active: bool | UnsetType = UNSET
    reason: Reason = ""


class ResourceOut(Struct):
    id: UUID
    business_id: UUID
    kind: str
    name: str
    group: str | None
    active: bool
    created_at: datetime


class ResourceChanged(Struct):
    resource: ResourceOut
    affected_booking_ids: list[UUID]
    offers: list[OfferOut]


class ServiceNeeds(Struct, forbid_unknown_fields=True):
    """What a service needs besides a member of staff: one resource of this group."""

    resource_group: Group | None


class ServiceNeedsOut(Struct):
    service_id: UUID
    resource_group: str | None
    resource_ids: list[UUID]
