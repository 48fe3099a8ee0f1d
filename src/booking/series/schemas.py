"""Wire shapes of recurring series."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from msgspec import Meta, Struct

from booking.bookings.schemas import Channel, CustomerIn, Notes, Reason, When

Rule = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=500,
        examples=["FREQ=WEEKLY;COUNT=10", "RRULE:FREQ=WEEKLY;INTERVAL=2;UNTIL=20270301T000000"],
        description="An RFC 5545 RRULE (COUNT or UNTIL required, at most 52 occurrences).",
    ),
]
Mode = Literal["all_or_nothing", "skip_conflicts"]


class SeriesCreate(Struct, forbid_unknown_fields=True):
    """``rule`` from ``starts_at`` (its first occurrence), or an explicit list of ``dates``."""

    service_id: UUID
    customer: CustomerIn
    mode: Mode
    starts_at: When | None = None
    rule: Rule | None = None
    dates: Annotated[list[When], Meta(max_length=100)] | None = None
    staff_id: UUID | None = None
    resource_id: UUID | None = None
    channel: Channel | None = None
    notes: Notes = ""


class Occurrence(Struct):
    starts_at: str
    outcome: Literal["booked", "conflict", "free"]  # free: would fit (all-or-nothing refused)
    booking_id: UUID | None = None
    reference_code: str | None = None
    reason: str | None = None
    alternatives: list[dict[str, Any]] | None = None


class SeriesOut(Struct):
    series_id: UUID
    mode: str
    booked: int
    conflicts: int
    occurrences: list[Occurrence]


class SeriesCancel(Struct, forbid_unknown_fields=True):
    reason: Reason | None = None


class SeriesCancelled(Struct):
    series_id: UUID
    cancelled_booking_ids: list[UUID]


class SeriesChange(Struct, forbid_unknown_fields=True):
    """This occurrence's new start; every later one moves by as many days, to the same
    new time of day in the business's zone."""

    starts_at: When
    staff_id: UUID | None = None
    override_reason: Reason | None = None


class MovedOccurrence(Struct):
    booking_id: UUID
    reference_code: str
    from_starts_at: str
    starts_at: str
    outcome: Literal["moved"]
    version: int


class SeriesChanged(Struct):
    series_id: UUID
    moved: int
    occurrences: list[MovedOccurrence]
