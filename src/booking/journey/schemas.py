"""Response shapes for a booking's journey (explicit, never table rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from msgspec import Struct

ActorType = Literal["customer", "front_desk", "manager", "admin", "partner", "app", "system"]


class Actor(Struct):
    """Who made the touchpoint happen: the customer, a partner (by name), the front desk
    or a manager (by the label of their key), or the system (which part of it)."""

    type: str
    name: str


class JourneyEntry(Struct):
    at: datetime
    touchpoint: str
    actor: Actor
    channel: str
    detail: dict[str, Any]


class Journey(Struct):
    booking_id: UUID
    business_id: UUID
    reference_code: str
    status: str
    time_zone: str
    audience: Literal["business", "partner", "customer"]
    entries: list[JourneyEntry]
