"""The v3 wire format: slots (Unix seconds, int64 as JSON strings), statuses, failures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

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


@dataclass(frozen=True, slots=True)
class SlotRef:
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


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise MalformedRequest("The body is not JSON.") from None
    if not isinstance(body, dict):
        raise MalformedRequest("The body must be a JSON object.")
    return body


def _int64(value: Any, field: str) -> int:
    # proto3 JSON writes int64 as a string; accept a number too.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise MalformedRequest(f"{field} must be an integer.", field=field)
    try:
        number = int(value)
    except ValueError:
        raise MalformedRequest(f"{field} must be an integer.", field=field) from None
    if not 0 <= number < 2**40:
        raise MalformedRequest(f"{field} is out of range.", field=field)
    return number


def _text(value: Any, field: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise MalformedRequest(f"{field} is required (a string).", field=field)
    return value


def parse_slot(raw: Any, merchant_id: str | None = None, *, field: str = "slot") -> SlotRef:
    if not isinstance(raw, dict):
        raise MalformedRequest(f"{field} must be an object.", field=field)
    # BatchAvailabilityLookup names the merchant once, beside slot_time; its
    # SlotTime carries resource_ids, a booking's Slot carries resources.
    merchant = raw.get("merchant_id", merchant_id)
    resources = raw.get("resources", raw.get("resource_ids")) or {}
    if not isinstance(resources, dict):
        raise MalformedRequest(f"{field}.resources must be an object.", field=field)
    party = resources.get("party_size")
    party_size = None
    if party is not None:
        party_size = _int64(party, f"{field}.resources.party_size")
        if party_size < 1:
            raise MalformedRequest("party_size must be at least 1.", field="party_size")
    duration = _int64(raw.get("duration_sec"), f"{field}.duration_sec")
    if duration <= 0:
        raise MalformedRequest("duration_sec must be positive.", field="duration_sec")
    return SlotRef(
        merchant_id=str(_text(merchant, f"{field}.merchant_id")),
        service_id=str(_text(raw.get("service_id"), f"{field}.service_id")),
        start_sec=_int64(raw.get("start_sec"), f"{field}.start_sec"),
        duration_sec=duration,
        staff_id=_text(resources.get("staff_id"), "staff_id", required=False),
        room_id=_text(resources.get("room_id"), "room_id", required=False),
        party_size=party_size,
    )


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
