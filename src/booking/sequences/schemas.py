"""Wire shapes of sequences (one visit, several services in a row)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from msgspec import Meta, Struct

from booking.bookings.schemas import BookingOut, Channel, CustomerIn, Notes, Reason, When

MAX_SEGMENTS = 5
MAX_GAP_MINUTES = 240  # a longer wait between two services is two appointments
Gap = Annotated[
    int,
    Meta(
        ge=0,
        le=MAX_GAP_MINUTES,
        description="Minutes between the end of this service and the start of the next.",
    ),
]


class SegmentIn(Struct, forbid_unknown_fields=True):
    service_id: UUID
    staff_id: UUID | None = None
    resource_id: UUID | None = None
    gap_after_minutes: Gap = 0


class SequenceCreate(Struct, forbid_unknown_fields=True):
    starts_at: When
    segments: Annotated[list[SegmentIn], Meta(min_length=2, max_length=MAX_SEGMENTS)]
    customer: CustomerIn
    channel: Channel | None = None
    notes: Notes = ""


class SequenceMove(Struct, forbid_unknown_fields=True):
    starts_at: When
    override_reason: Reason | None = None


class SegmentOut(Struct):
    id: UUID
    booking_id: UUID
    position: int
    service_id: UUID
    staff_id: UUID
    resource_id: UUID | None
    starts_at: datetime
    ends_at: datetime


class VisitOut(Struct):
    """The whole visit as the customer sees it, and each segment as its staff see it."""

    booking: BookingOut
    segments: list[SegmentOut]


class SegmentSlot(Struct):
    position: int
    starts_at: datetime
    staff_id: UUID
    resource_id: UUID | None = None


class SequenceSlot(Struct):
    starts_at: datetime
    segments: list[SegmentSlot]
