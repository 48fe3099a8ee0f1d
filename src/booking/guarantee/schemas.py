"""Request and response shapes of the guarantee API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from msgspec import Meta, Struct

from booking.bookings.schemas import BookingOut, When, booking_out

Reason = Annotated[str, Meta(max_length=500)]


class TimeOffCreate(Struct, forbid_unknown_fields=True):
    starts_at: When
    ends_at: When
    reason: Reason = ""
    kind: Literal["time_off", "sick_leave"] = "time_off"


class StaffDeactivate(Struct, forbid_unknown_fields=True):
    reason: Reason = ""


class OfferOption(Struct):
    position: int
    starts_at: datetime
    ends_at: datetime
    staff_id: UUID
    hold_id: UUID
    hold_status: str
    staff_name: str | None = None
    resource_id: UUID | None = None  # the room/chair/device the option takes, if any
    resource_name: str | None = None


class OfferOut(Struct):
    id: UUID
    booking_id: UUID
    kind: str
    status: str
    reason: str
    expires_at: datetime
    options: list[OfferOption]
    accepted_position: int | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    created_at: datetime | None = None


class LostSlotOut(Struct):
    affected_booking_ids: list[UUID]
    offers: list[OfferOut]
    time_off_id: UUID | None = None
    staff_id: UUID | None = None


class OfferAccept(Struct, forbid_unknown_fields=True):
    option: Annotated[int, Meta(ge=1, le=3)]


class OfferAccepted(Struct):
    booking: BookingOut
    offer: OfferOut


class WaitlistJoin(Struct, forbid_unknown_fields=True):
    earliest: When | None = None
    latest: When | None = None


class WaitlistOut(Struct):
    id: UUID
    booking_id: UUID
    earliest: datetime
    latest: datetime
    status: str
    created_at: datetime


class KindCounts(Struct):
    kept: int
    broken: int
    open: int


class PromiseStats(Struct):
    business_id: UUID
    kept: int
    broken: int
    open: int
    kept_rate: float | None
    by_kind: dict[str, KindCounts]
    as_of: datetime


class PromiseOut(Struct):
    id: UUID
    kind: str
    booking_id: UUID | None
    reference_code: str | None
    made_at: datetime
    nudge_at: datetime
    due_at: datetime
    nudged_at: datetime | None


class AtRiskBooking(Struct):
    booking: BookingOut
    at_risk_since: datetime
    at_risk_reason: str | None
    open_offer_id: UUID | None


class RiskView(Struct):
    business_id: UUID
    day: str
    at_risk: list[AtRiskBooking]
    open_offers: list[OfferOut]
    promises_due_soon: list[PromiseOut]


def offer_out(row: dict[str, Any]) -> OfferOut:
    fields = {name: row[name] for name in OfferOut.__struct_fields__ if name in row}
    fields["options"] = [
        OfferOption(**{k: v for k, v in o.items() if k in OfferOption.__struct_fields__})
        for o in row.get("options", [])
    ]
    return OfferOut(**fields)


def waitlist_out(row: dict[str, Any]) -> WaitlistOut:
    return WaitlistOut(**{k: row[k] for k in WaitlistOut.__struct_fields__})


def at_risk_out(row: dict[str, Any], tz: ZoneInfo) -> AtRiskBooking:
    return AtRiskBooking(
        booking=booking_out(row, tz),
        at_risk_since=row["at_risk_since"],
        at_risk_reason=row["at_risk_reason"],
        open_offer_id=row["open_offer_id"],
    )
