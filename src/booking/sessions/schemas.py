"""Wire shapes of group sessions and their seat bookings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from msgspec import Meta, Struct

from booking.bookings.schemas import BookingOut, Channel, CustomerIn, Notes, Reason, When
from booking.guarantee.schemas import OfferOut

MAX_SEATS = 1000  # the schema's bound on a capacity and on a party (CHECKs in the migration)
Capacity = Annotated[int, Meta(ge=1, le=MAX_SEATS, examples=[12])]
PartySize = Annotated[
    int, Meta(ge=1, le=MAX_SEATS, examples=[2], description="Seats the booking takes.")
]


class GroupService(Struct, forbid_unknown_fields=True):
    """Make a service a group service (default capacity of its sessions) or not (null)."""

    capacity: Capacity | None


class GroupServiceOut(Struct):
    service_id: UUID
    capacity: int | None


class SessionCreate(Struct, forbid_unknown_fields=True):
    service_id: UUID
    starts_at: When
    staff_id: UUID
    resource_id: UUID | None = None
    capacity: Capacity | None = None  # default: the service's group capacity


class SessionOut(Struct):
    id: UUID
    business_id: UUID
    service_id: UUID
    staff_id: UUID
    resource_id: UUID | None
    starts_at: datetime
    ends_at: datetime
    capacity: int
    seats_taken: int
    seats_left: int
    status: str
    version: int
    time_zone: str = "UTC"


class SeatsCreate(Struct, forbid_unknown_fields=True):
    customer: CustomerIn
    seats: PartySize = 1
    channel: Channel | None = None
    notes: Notes = ""


class SeatsHold(Struct, forbid_unknown_fields=True):
    seats: PartySize = 1
    channel: Channel | None = None


class SeatsMove(Struct, forbid_unknown_fields=True):
    """Move a seat booking to another session of the same service (and/or resize it)."""

    session_id: UUID
    seats: PartySize | None = None  # default: as many as it has
    override_reason: Reason | None = None


class SessionCancel(Struct, forbid_unknown_fields=True):
    reason: Reason


class SessionCancelled(Struct):
    session: SessionOut
    cancelled_booking_ids: list[UUID]  # holds released at once
    affected_booking_ids: list[UUID] = []  # attendees put at risk, one offer each
    offers: list[OfferOut] = []


class SeatsHeld(Struct):
    hold: BookingOut
    hold_token: str
    expires_at: datetime
