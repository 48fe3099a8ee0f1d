"""The v3 wire format: slots (Unix seconds, int64 as JSON strings), statuses, failures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from msgspec import Meta, Struct

from booking.errors import MalformedRequest

# BookingStatus (booking server REST v3, Booking definition).
STATUS_BY_OURS = {
    "held": "PENDING_CLIENT_CONFIRMATION",
    "pending": "PENDING_MERCHANT_CONFIRMATION",
    "confirmed": "CONFIRMED",
    "checked_in": "CONFIRMED",
    "completed": "CONFIRMED",
    "cancelled": "CANCELED",
    "no_show": "NO_SHOW",
    "expired": "FAILED",
}

# BookingFailure.Cause (bookingfailure-definition).
SLOT_UNAVAILABLE = "SLOT_UNAVAILABLE"
SLOT_ALREADY_BOOKED_BY_USER = "SLOT_ALREADY_BOOKED_BY_USER"
LEASE_EXPIRED = "LEASE_EXPIRED"
OUTSIDE_CANCELLATION_WINDOW = "OUTSIDE_CANCELLATION_WINDOW"


class SlotRef(Struct, frozen=True, gc=False):
    merchant_id: str
    service_id: str
    start_sec: int
    duration_sec: int
    staff_id: str | None = None
    room_id: str | None = None
    party_size: int | None = None

    @property
    def starts_at(self) -> datetime:
        return datetime.fromtimestamp(self.start_sec, UTC)


# The wire shapes, checked by msgspec in one pass (a batch holds thousands of slots).
# proto3 JSON writes int64 as a string: strict=False takes "1800" and 1800 alike.
_Text = Annotated[str, Meta(min_length=1)]
_Int64 = Annotated[int, Meta(ge=0, lt=2**40)]
_Positive = Annotated[int, Meta(ge=1, lt=2**40)]


class _Resources(Struct, gc=False):
    staff_id: _Text | None = None
    room_id: _Text | None = None
    party_size: _Positive | None = None


class SlotTime(Struct, kw_only=True, gc=False):
    """A Slot or SlotTime as decoded. BatchAvailabilityLookup names the merchant once,
    beside slot_time; its SlotTime carries resource_ids, a booking's Slot resources."""

    merchant_id: _Text | None = None
    service_id: _Text
    start_sec: _Int64
    duration_sec: _Positive
    resources: _Resources | None = None
    resource_ids: _Resources | None = None


class _Lookup(Struct):
    merchant_id: _Text
    slot_time: list[SlotTime]


class _Echo(Struct):
    slot_time: list[msgspec.Raw]


_lookup_decoder = msgspec.json.Decoder(_Lookup, strict=False)
_echo_decoder = msgspec.json.Decoder(_Echo)


def _malformed(exc: msgspec.ValidationError, field: str = "") -> MalformedRequest:
    # msgspec ends its message with "- at `$.path.to[3].field`"
    message = str(exc)
    _, at, path = message.rpartition(" - at `$")
    where = (field + path.rstrip("`") if at else field).lstrip(".")
    extra = {"field": where} if where else {}
    return MalformedRequest(f"{field}: {message}" if field else message, **extra)


def _ref(slot: SlotTime, merchant_id: str | None, field: str) -> SlotRef:
    merchant = slot.merchant_id or merchant_id
    if merchant is None:
        raise MalformedRequest(f"{field}.merchant_id is required.", field=f"{field}.merchant_id")
    resources = slot.resources or slot.resource_ids
    if resources is None:
        return SlotRef(merchant, slot.service_id, slot.start_sec, slot.duration_sec)
    return SlotRef(
        merchant,
        slot.service_id,
        slot.start_sec,
        slot.duration_sec,
        resources.staff_id,
        resources.room_id,
        resources.party_size,
    )


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise MalformedRequest("The body is not JSON.") from None
    except RecursionError:  # our handlers take no `data`: the limits skip the depth check
        raise MalformedRequest("The body nests too deeply.") from None
    if not isinstance(body, dict):
        raise MalformedRequest("The body must be a JSON object.")
    return body


def parse_slot(raw: Any, merchant_id: str | None = None, *, field: str = "slot") -> SlotRef:
    try:
        slot = msgspec.convert(raw, SlotTime, strict=False)
    except msgspec.ValidationError as exc:
        raise _malformed(exc, field) from None
    return _ref(slot, merchant_id, field)


def parse_lookup(raw: bytes) -> tuple[str, list[SlotTime], list[msgspec.Raw]]:
    """A BatchAvailabilityLookup body: its merchant, its SlotTimes as decoded (no object
    per slot beyond msgspec's), and each SlotTime as sent (echoed)."""
    try:
        body = _lookup_decoder.decode(raw)
        echo = _echo_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise _malformed(exc) from None
    except msgspec.DecodeError:
        raise MalformedRequest("The body is not JSON.") from None
    except RecursionError:
        raise MalformedRequest("The body nests too deeply.") from None
    return body.merchant_id, body.slot_time, echo.slot_time


def parse_slot_time(raw: Any, *, field: str = "slot") -> SlotTime:
    """One Slot as a lookup reads it (CheckAvailability); its merchant is required."""
    try:
        slot = msgspec.convert(raw, SlotTime, strict=False)
    except msgspec.ValidationError as exc:
        raise _malformed(exc, field) from None
    if slot.merchant_id is None:
        raise MalformedRequest(f"{field}.merchant_id is required.", field=f"{field}.merchant_id")
    return slot


class _Availability(Struct, gc=False):
    slot_time: msgspec.Raw
    available: bool


class _LookupAnswer(Struct, gc=False):
    slot_time_availability: list[_Availability]


_encoder = msgspec.json.Encoder()


def lookup_answer(echo: list[msgspec.Raw], free: list[bool]) -> bytes:
    """BatchAvailabilityLookupResponse: each SlotTime as sent, with its availability.
    msgspec writes the Raw slots straight into its buffer: 0.6 ms for 5,040 slots, where
    joining them as bytes took 1.6 ms (each Raw exported as a buffer on the way)."""
    return _encoder.encode(
        _LookupAnswer(list(map(_Availability, echo, free)))  # positional: slot, available
    )


def encode(body: dict[str, Any]) -> bytes:
    return msgspec.json.encode(body)


def as_uuid(value: str | None, field: str) -> UUID | None:
    """Our ids are UUIDs; anything else names nothing of ours."""
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise MalformedRequest(f"Unknown {field}.", field=field) from None


def slot_json(row: dict[str, Any], party_size: int | None = None) -> dict[str, Any]:
    starts: datetime = row["starts_at"]
    ends: datetime = row["ends_at"]
    resources: dict[str, Any] = {"staff_id": str(row["staff_id"])}
    if row.get("resource_id"):
        resources["room_id"] = str(row["resource_id"])
    if party_size is not None:
        resources["party_size"] = party_size
    return {
        "merchant_id": str(row["business_id"]),
        "service_id": str(row["service_id"]),
        "start_sec": str(int(starts.timestamp())),
        "duration_sec": str(int((ends - starts).total_seconds())),
        "resources": resources,
        "confirmation_mode": "CONFIRMATION_MODE_SYNCHRONOUS",
    }


def booking_json(row: dict[str, Any], user: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "booking_id": str(row["id"]),
        "slot": slot_json(row),
        "status": STATUS_BY_OURS.get(str(row["status"]), "CONFIRMED"),
        "payment_information": {"prepayment_status": "PREPAYMENT_NOT_PROVIDED"},
    }
    if user is not None:
        out["user_information"] = user
    return out


def failure(cause: str, description: str) -> dict[str, Any]:
    return {"cause": cause, "description": description}
