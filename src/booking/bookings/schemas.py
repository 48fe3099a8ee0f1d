"""Request and response shapes for holds and bookings (explicit, never table rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from booking.wire_time import localize

Name = Annotated[str, Meta(min_length=1, max_length=200)]
Phone = Annotated[str, Meta(min_length=3, max_length=32, examples=["+393331234567"])]
Locale = Annotated[str, Meta(min_length=2, max_length=10, examples=["it", "en"])]
Notes = Annotated[str, Meta(max_length=2000)]
Reason = Annotated[str, Meta(min_length=1, max_length=500)]
Token = Annotated[str, Meta(min_length=8, max_length=200)]
Channel = Literal["web", "mobile", "front_desk", "partner", "phone", "sms", "system"]
When = Annotated[datetime, Meta(examples=["2026-12-01T10:00:00+01:00"])]


class CustomerIn(Struct, forbid_unknown_fields=True):
    name: Name
    phone: Phone
    locale: Locale | None = None


class HoldCreate(Struct, forbid_unknown_fields=True):
    service_id: UUID
    starts_at: When
    staff_id: UUID | None = None
    channel: Channel | None = None
    resource_id: UUID | None = None


class HoldConfirm(Struct, forbid_unknown_fields=True):
    hold_token: Token
    customer: CustomerIn
    notes: Notes = ""


class HoldRelease(Struct, forbid_unknown_fields=True):
    hold_token: Token


class BookingCreate(Struct, forbid_unknown_fields=True):
    service_id: UUID
    starts_at: When
    customer: CustomerIn
    staff_id: UUID | None = None
    channel: Channel | None = None
    notes: Notes = ""
    resource_id: UUID | None = None


class BookingChange(Struct, forbid_unknown_fields=True):
    """Any of these; what is left out stays as it is."""

    starts_at: When | UnsetType = UNSET
    staff_id: UUID | UnsetType = UNSET
    service_id: UUID | UnsetType = UNSET
    resource_id: UUID | UnsetType = UNSET
    override_reason: Reason | None = None


class ActionBody(Struct, forbid_unknown_fields=True):
    reason: Reason | None = None


class BookingOut(Struct):
    id: UUID
    business_id: UUID
    reference_code: str
    status: str
    channel: str
    service_id: UUID
    staff_id: UUID
    customer_id: UUID | None
    starts_at: datetime
    ends_at: datetime
    version: int
    change_count: int
    hold_expires_at: datetime | None
    cancel_reason: str | None
    notes: str
    created_at: datetime
    updated_at: datetime
    time_zone: Annotated[
        str, Meta(description="The business's IANA zone; every time above is in it.")
    ] = "UTC"
    manage_token: str | None = None
    resource_id: UUID | None = None  # the room/chair/device, when the service needs one
    session_id: UUID | None = None  # the group session, for a booking of seats in a class
    seats: int = 1  # party size: the seats it takes in its session (1 for a 1:1 booking)
    series_id: UUID | None = None  # the recurring series this occurrence belongs to
    is_sequence: bool = False  # a visit of several services (GET .../segments for them)


class HoldOut(Struct):
    hold: BookingOut
    hold_token: str
    expires_at: datetime


class BookingPage(Struct):
    items: list[BookingOut]
    next_cursor: str | None


class Slot(Struct):
    starts_at: datetime
    ends_at: datetime
    staff_id: UUID
    resource_id: UUID | None = None


class RebookingOptions(Struct):
    booking: BookingOut
    alternatives: list[Slot]


class HistoryEvent(Struct):
    id: int
    occurred_at: datetime
    event: str
    from_status: str | None
    to_status: str | None
    actor_type: str
    actor_id: str
    channel: str
    changes: dict[str, Any]
    reason: str | None
    policy_override: bool


def booking_out(row: dict[str, Any], tz: ZoneInfo, manage_token: str | None = None) -> BookingOut:
    """The booking for the wire, its times in the business's zone ``tz``."""
    fields = {
        name: row[name]
        for name in BookingOut.__struct_fields__
        if name in row and name not in ("time_zone", "manage_token")
    }
    return localize(BookingOut(**fields, time_zone=tz.key, manage_token=manage_token), tz)


def history_out(row: dict[str, Any], tz: ZoneInfo) -> HistoryEvent:
    """A history entry; its ``changes`` (stored in UTC, older rows as "Y-m-d H:M:S+00")
    rendered in the business's zone like everything else."""
    fields = {name: row[name] for name in HistoryEvent.__struct_fields__}
    return localize(HistoryEvent(**fields), tz)


def slot_out(raw: dict[str, Any]) -> Slot:
    return msgspec.convert(raw, Slot)
