"""Request and response shapes for webhook endpoints and deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from msgspec import Meta, Struct

from booking.wire_time import business_zone, localize

EventType = Literal[
    "booking.created",
    "booking.confirmed",
    "booking.changed",
    "booking.cancelled",
    "booking.checked_in",
    "booking.completed",
    "booking.no_show",
    "message.delivered",
    "message.failed",
    "offer.created",
    "offer.accepted",
    "offer.expired",
    "promise.at_risk",
    "promise.broken",
    "feedback.received",
]


class EndpointCreate(Struct, forbid_unknown_fields=True):
    url: Annotated[
        str, Meta(min_length=8, max_length=2000, examples=["https://partner.example/hooks"])
    ]
    event_types: Annotated[list[EventType], Meta(min_length=1, max_length=20)]
    description: Annotated[str, Meta(max_length=500)] = ""


class EndpointOut(Struct):
    id: UUID
    url: str
    description: str
    event_types: list[str]
    created_at: datetime
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    previous_secret_expires_at: Annotated[
        datetime | None,
        Meta(description="After a rotation: until when the previous secret also signs."),
    ] = None
    time_zone: Annotated[
        str, Meta(description="The zone of your key's businesses (UTC when they differ).")
    ] = "UTC"


class SecretRotate(Struct, forbid_unknown_fields=True):
    overlap_hours: Annotated[
        int,
        Meta(
            ge=0,
            le=168,
            description="How long the current secret keeps signing beside the new one.",
        ),
    ] = 24


class EndpointCreated(Struct):
    secret: Annotated[
        str, Meta(description="Standard Webhooks signing secret (whsec_...). Shown this once.")
    ]
    endpoint: EndpointOut


class AttemptOut(Struct):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(Struct):
    id: UUID
    endpoint_id: UUID
    message_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict[str, Any]
    attempt_log: list[AttemptOut] = []


def endpoint_out(row: dict[str, Any], tz: ZoneInfo) -> EndpointOut:
    fields = {name: row[name] for name in EndpointOut.__struct_fields__ if name != "time_zone"}
    return localize(EndpointOut(**fields, time_zone=tz.key), tz)


async def delivery_out(row: dict[str, Any], fallback: ZoneInfo) -> DeliveryOut:
    """A delivery in its booking's business zone; the payload exactly as it was sent."""
    fields = {name: row[name] for name in DeliveryOut.__struct_fields__ if name in row}
    delivery = msgspec.convert(fields, DeliveryOut, strict=False)
    business = (delivery.payload.get("data") or {}).get("business_id")
    try:
        tz = await business_zone(UUID(str(business))) if business else fallback
    except ValueError:
        tz = fallback
    return localize(delivery, tz, keep=("payload",))
