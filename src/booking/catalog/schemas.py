"""Request and response shapes of the catalog and settings API (explicit, never table rows).

Per use case: ``...Create`` (POST), ``...Patch`` (PATCH: every field ``UNSET`` unless
sent, so leaving a field out keeps it), ``...Out`` (what a read answers; its ETag is a
hash of it, see :mod:`booking.catalog.audit`). Ranges a field can never leave are
declared here (400 with the field named); rules that need the world (a time zone that
exists, a real phone number, another tenant's staff) live in the services (422/404).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

Name = Annotated[str, Meta(min_length=1, max_length=200, examples=["Salone Aurora"])]
Slug = Annotated[str, Meta(pattern="^[a-z0-9][a-z0-9-]{1,62}$", examples=["salone-aurora"])]
TimeZoneName = Annotated[
    str, Meta(min_length=1, max_length=64, examples=["America/New_York", "Europe/Rome"])
]
Locale = Annotated[str, Meta(min_length=2, max_length=10, examples=["en", "it"])]
Phone = Annotated[str, Meta(min_length=3, max_length=32, examples=["+12125550123"])]
Address = Annotated[str, Meta(max_length=500)]
Minutes = Annotated[int, Meta(ge=0, le=525_600)]
# Offsets before the appointment at which reminders go out (1 minute .. 30 days).
ReminderOffsets = Annotated[
    list[Annotated[int, Meta(ge=1, le=43_200)]], Meta(max_length=5, examples=[[1440, 120]])
]
Duration = Annotated[int, Meta(ge=5, le=1440, examples=[45])]
RetentionMonths = Annotated[int, Meta(ge=1, le=240, examples=[24])]
Buffer = Annotated[int, Meta(ge=0, le=240, examples=[10])]
Currency = Annotated[str, Meta(pattern="^[A-Z]{3}$", examples=["USD", "EUR"])]
Reason = Annotated[str, Meta(max_length=500)]
Note = Annotated[str, Meta(max_length=500)]
Wall = Annotated[
    str,
    Meta(
        pattern="^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
        examples=["09:00", "17:30"],
        description="Wall-clock time in the business's zone, HH:MM",
    ),
]


class BusinessCreate(Struct, forbid_unknown_fields=True):
    slug: Slug
    name: Name
    time_zone: TimeZoneName
    locale: Locale = "en"
    address: Address = ""
    on_duty_phone: Phone | None = None
    change_cutoff_minutes: Minutes = 120
    max_changes: Annotated[int, Meta(ge=0, le=100)] = 3
    min_notice_minutes: Minutes = 60
    slot_step_minutes: Annotated[int, Meta(ge=5, le=240)] = 15
    hold_ttl_seconds: Annotated[int, Meta(ge=30, le=86_400)] = 600
    reminder_offsets_minutes: ReminderOffsets = msgspec.field(default_factory=lambda: [1440, 120])
    confirm_within_minutes: Annotated[int, Meta(ge=1, le=10_080)] = 120
    customer_may_confirm: bool = True
    require_if_match: bool = False
    retention_months: RetentionMonths | None = None


class BusinessPatch(Struct, forbid_unknown_fields=True):
    """What is left out stays as it is; ``on_duty_phone: null`` removes the phone."""

    name: Name | UnsetType = UNSET
    time_zone: TimeZoneName | UnsetType = UNSET
    locale: Locale | UnsetType = UNSET
    address: Address | UnsetType = UNSET
    on_duty_phone: Phone | UnsetType | None = UNSET
    change_cutoff_minutes: Minutes | UnsetType = UNSET
    max_changes: Annotated[int, Meta(ge=0, le=100)] | UnsetType = UNSET
    min_notice_minutes: Minutes | UnsetType = UNSET
    slot_step_minutes: Annotated[int, Meta(ge=5, le=240)] | UnsetType = UNSET
    hold_ttl_seconds: Annotated[int, Meta(ge=30, le=86_400)] | UnsetType = UNSET
    reminder_offsets_minutes: ReminderOffsets | UnsetType = UNSET
    confirm_within_minutes: Annotated[int, Meta(ge=1, le=10_080)] | UnsetType = UNSET
    customer_may_confirm: bool | UnsetType = UNSET
    # true: a staff change of a booking without If-Match is refused (428).
    require_if_match: bool | UnsetType = UNSET
    # Customers with no booking for this many months are anonymised; null: kept.
    retention_months: RetentionMonths | UnsetType | None = UNSET


class BusinessOut(Struct):
    id: UUID
    slug: str
    name: str
    time_zone: str
    locale: str
    address: str
    on_duty_phone: str | None
    change_cutoff_minutes: int
    max_changes: int
    min_notice_minutes: int
    slot_step_minutes: int
    hold_ttl_seconds: int
    reminder_offsets_minutes: list[int]
    confirm_within_minutes: int
    customer_may_confirm: bool
    require_if_match: bool
    retention_months: int | None


class StaffCreate(Struct, forbid_unknown_fields=True):
    name: Name
    phone: Phone | None = None


class StaffPatch(Struct, forbid_unknown_fields=True):
    """Rename, change the phone, or take off (``active: false``) / back on the rota.

    Deactivation runs the lost-slot recovery: every future booking of the member of
    staff is marked at risk and offered alternatives, in the same transaction."""

    name: Name | UnsetType = UNSET
    phone: Phone | UnsetType | None = UNSET
    active: bool | UnsetType = UNSET
    reason: Reason = ""


class StaffOut(Struct):
    id: UUID
    name: str
    active: bool
    phone: str | None = None


class ServiceCreate(Struct, forbid_unknown_fields=True):
    name: Name
    duration_minutes: Duration
    buffer_before_minutes: Buffer = 0
    buffer_after_minutes: Buffer = 0
    price_cents: Annotated[int, Meta(ge=0, le=100_000_000)] = 0
    currency: Currency = "EUR"
    requires_confirmation: bool = False
    staff_ids: Annotated[list[UUID], Meta(max_length=500)] = []


class ServicePatch(Struct, forbid_unknown_fields=True):
    """``staff_ids`` replaces who offers the service; bookings with staff taken off it
    go through the lost-slot recovery. ``active: false`` stops new bookings (existing
    ones are kept)."""

    name: Name | UnsetType = UNSET
    duration_minutes: Duration | UnsetType = UNSET
    buffer_before_minutes: Buffer | UnsetType = UNSET
    buffer_after_minutes: Buffer | UnsetType = UNSET
    price_cents: Annotated[int, Meta(ge=0, le=100_000_000)] | UnsetType = UNSET
    currency: Currency | UnsetType = UNSET
    requires_confirmation: bool | UnsetType = UNSET
    staff_ids: Annotated[list[UUID], Meta(max_length=500)] | UnsetType = UNSET
    active: bool | UnsetType = UNSET


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
    active: bool = True


class TimeRange(Struct, forbid_unknown_fields=True):
    opens_at: Wall
    closes_at: Wall


DayRanges = Annotated[list[TimeRange], Meta(max_length=12)]


class DayHours(Struct, forbid_unknown_fields=True):
    weekday: Annotated[int, Meta(ge=0, le=6, description="0 = Monday .. 6 = Sunday")]
    ranges: DayRanges


class WeekHours(Struct, forbid_unknown_fields=True):
    """The whole week, in the business's time zone. A weekday left out (or with no
    ranges) is a day off. PATCH: only the weekdays named are replaced."""

    days: Annotated[list[DayHours], Meta(max_length=7)]
    reason: Reason = ""


class HoursOut(Struct):
    staff_id: UUID
    days: list[DayHours]


class ExceptionPut(Struct, forbid_unknown_fields=True):
    """A closed day (``closed: true``) or a special opening (its own ``ranges``)."""

    closed: bool = False
    ranges: DayRanges = []
    note: Note = ""


class ExceptionOut(Struct):
    staff_id: UUID
    day: date
    closed: bool
    ranges: list[TimeRange]
    note: str


class StrandedBooking(Struct):
    """A booking the change left outside the new hours or eligibility: it is now at risk
    and (when alternatives were free) has an open reschedule offer."""

    booking_id: UUID
    reference_code: str
    starts_at: datetime
    offer_id: UUID | None
    offer_status: str | None


class StaffChanged(Struct):
    staff: StaffOut
    stranded: list[StrandedBooking]


class ServiceChanged(Struct):
    service: ServiceOut
    stranded: list[StrandedBooking]


class HoursChanged(Struct):
    hours: HoursOut
    stranded: list[StrandedBooking]


class ExceptionChanged(Struct):
    exception: ExceptionOut | None
    stranded: list[StrandedBooking]


class AuditEntry(Struct):
    id: int
    entity: Literal["business", "staff", "service", "hours", "exception"]
    entity_id: UUID
    action: str
    actor_type: str
    actor_id: str
    changes: dict[str, Any]
    created_at: datetime


class BusinessChanged(Struct):
    business: BusinessOut
    stranded: list[StrandedBooking]
