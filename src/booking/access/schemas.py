"""Request and response shapes for API keys (the secret appears once, in KeyIssued)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from msgspec import Meta, Struct

from booking.wire_time import common_zone, localize

Scope = Literal[
    "availability:read",
    "bookings:read",
    "bookings:read_all",
    "bookings:write",
    "bookings:change",
    "bookings:cancel",
    "webhooks:manage",
]


class KeyCreate(Struct, forbid_unknown_fields=True):
    kind: Literal["partner", "staff", "app"]
    name: Annotated[str, Meta(max_length=200)] = ""
    business_ids: Annotated[list[UUID], Meta(max_length=100)] = []
    role: Literal["front_desk", "manager"] | None = None
    partner_id: UUID | None = None
    partner_name: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    scopes: Annotated[list[Scope], Meta(max_length=20)] = []
    rate_limit_per_minute: Annotated[int, Meta(ge=0, le=1_000_000)] | None = None


class KeyOut(Struct):
    id: UUID
    prefix: str
    kind: str
    role: str | None
    partner_id: UUID | None
    business_ids: list[UUID]
    scopes: list[str]
    name: str
    rate_limit_per_minute: int | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    time_zone: Annotated[
        str,
        Meta(description="The zone of the key's businesses (UTC when they differ or none)."),
    ] = "UTC"


class KeyIssued(Struct):
    key: Annotated[str, Meta(description="The secret. Shown this once; store it now.")]
    api_key: KeyOut


async def key_out(row: dict[str, Any]) -> KeyOut:
    tz = await common_zone(row["business_ids"] or ())
    fields = {
        name: row[name]
        for name in KeyOut.__struct_fields__
        if name not in ("business_ids", "time_zone")
    }
    out = KeyOut(**fields, business_ids=list(row["business_ids"] or ()), time_zone=tz.key)
    return localize(out, tz)
