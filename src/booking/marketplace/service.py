"""The v3 methods over our own operations: availability search, holds, the one
booking write path (create_booking / confirm_hold / change_booking / transition)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from booking import db
from booking.access.principal import Principal
from booking.availability.answer import availability
from booking.bookings.changes import ChangeRequest, change_booking
from booking.bookings.checks import CustomerInput
from booking.bookings.holds import confirm_hold, create_hold
from booking.bookings.placing import create_booking
from booking.bookings.queries import get_booking
from booking.bookings.transitions import transition
from booking.errors import (
    HoldExpired,
    MalformedRequest,
    NotFound,
    PolicyViolation,
    SlotTaken,
)
from booking.marketplace import wire
from booking.marketplace.listing import is_listed
from booking.marketplace.wire import SlotRef

USER_TAG = "actions_center_user_id="


async def _service_duration(principal: Principal, slot: SlotRef) -> tuple[UUID, UUID, int]:
    business = wire.as_uuid(slot.merchant_id, "merchant_id")
    service = wire.as_uuid(slot.service_id, "service_id")
    assert business is not None
    assert service is not None
    principal.require_business(business)  # another tenant's merchant looks missing
    async with db.connection() as conn:
        if not await is_listed(conn, business, principal.partner_id):
            raise NotFound("No such merchant.")  # not listed for this partner
        minutes = await conn.fetchval(
            "SELECT duration_minutes FROM service WHERE business_id = $1 AND id = $2 AND active",
            business,
            service,
        )
    if minutes is None:
        raise NotFound("No such merchant or service.")
    return business, service, int(minutes) * 60


async def lookup(principal: Principal, slots: list[SlotRef]) -> list[bool]:
    """Whether each slot is free, in order; one availability search per service."""
    answer = [False] * len(slots)
    now = int(datetime.now(UTC).timestamp())
    groups: dict[tuple[str, str], list[int]] = {}
    for index, slot in enumerate(slots):
        groups.setdefault((slot.merchant_id, slot.service_id), []).append(index)
    for indexes in groups.values():
        first = slots[indexes[0]]
        business, service, duration = await _service_duration(principal, first)
        wanted = [
            i
            for i in indexes
            if slots[i].duration_sec == duration
            and slots[i].start_sec > now
            and (slots[i].party_size or 1) == 1
        ]
        if not wanted:
            continue
        low = min(slots[i].start_sec for i in wanted)
        high = max(slots[i].start_sec for i in wanted) + 1
        for start in range(low, high, 60 * 86400):  # the search spans at most 62 days
            end = min(high, start + 60 * 86400)
            _, times = await availability(
                business,
                service,
                datetime.fromtimestamp(start, UTC),
                datetime.fromtimestamp(end, UTC),
            )
            free = {
                int(begin.timestamp()): (
                    {str(s) for s in staff},
                    None if rooms is None else {str(r) for r in rooms},
                )
                for begin, _end, staff, rooms in times
            }
            for i in wanted:
                slot = slots[i]
                found = free.get(slot.start_sec)
                if found is None:
                    continue
                staff, rooms = found
                if slot.staff_id is not None and slot.staff_id not in staff:
                    continue
                if slot.room_id is not None and (rooms is None or slot.room_id not in rooms):
                    continue
                answer[i] = True
    return answer


def _customer(user: Any) -> tuple[CustomerInput, str]:
    if not isinstance(user, dict):
        raise MalformedRequest("user_information is required.", field="user_information")
    user_id = user.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        raise MalformedRequest("user_information.user_id is required.", field="user_id")
    name = " ".join(str(user.get(part) or "") for part in ("given_name", "family_name")).strip()
    phone = user.get("telephone")
    if not isinstance(phone, str) or not phone:
        raise MalformedRequest("user_information.telephone is required.", field="telephone")
    return CustomerInput(name=name or "Actions Center user", phone=phone), user_id


async def _check_bookable(principal: Principal, slot: SlotRef) -> tuple[UUID, UUID] | str:
    business, service, duration = await _service_duration(principal, slot)
    if slot.duration_sec != duration:
        return "The service has no slot of that duration."
    if slot.start_sec <= int(datetime.now(UTC).timestamp()):
        return "The slot is in the past."
    if (slot.party_size or 1) != 1:
        return "Appointments take one person."
    return business, service


async def _already_booked(principal: Principal, business: UUID, user_id: str, start: int) -> bool:
    async with db.connection() as conn:
        found = await conn.fetchval(
            "SELECT 1 FROM booking WHERE business_id = $1 AND partner_id = $2 "
            "AND notes = $3 AND starts_at = $4 AND status IN ('held','pending','confirmed')",
            business,
            principal.partner_id,
            USER_TAG + user_id,
            datetime.fromtimestamp(start, UTC),
        )
    return found is not None


async def create(principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    slot = wire.parse_slot(body.get("slot"))
    customer, user_id = _customer(body.get("user_information"))
    lease = body.get("lease_ref")
    checked = await _check_bookable(principal, slot)
    if isinstance(checked, str):
        return {"booking_failure": wire.failure(wire.SLOT_UNAVAILABLE, checked)}
    business, service = checked
    try:
        if lease is not None:
            hold_id, token = _lease_parts(lease)
            row = await confirm_hold(principal, hold_id, token, customer, notes=USER_TAG + user_id)
        else:
            if await _already_booked(principal, business, user_id, slot.start_sec):
                return {
                    "booking_failure": wire.failure(
                        wire.SLOT_ALREADY_BOOKED_BY_USER, "This user already booked that slot."
                    )
                }
            row = await create_booking(
                principal,
                business,
                service,
                slot.starts_at,
                customer,
                staff_id=wire.as_uuid(slot.staff_id, "staff_id"),
                resource_id=wire.as_uuid(slot.room_id, "room_id"),
                notes=USER_TAG + user_id,
            )
    except SlotTaken as exc:
        return {"booking_failure": wire.failure(wire.SLOT_UNAVAILABLE, exc.detail)}
    except HoldExpired as exc:
        return {"booking_failure": wire.failure(wire.LEASE_EXPIRED, exc.detail)}
    except PolicyViolation as exc:  # e.g. minimum notice
        return {"booking_failure": wire.failure(wire.SLOT_UNAVAILABLE, exc.detail)}
    return {"booking": wire.booking_json(row, _user_out(body["user_information"]))}


def _user_out(user: dict[str, Any]) -> dict[str, Any]:
    keys = ("user_id", "given_name", "family_name", "telephone", "email")
    return {key: user[key] for key in keys if key in user}


def _lease_parts(lease: Any) -> tuple[UUID, str]:
    lease_id = lease.get("lease_id") if isinstance(lease, dict) else None
    if not isinstance(lease_id, str) or "." not in lease_id:
        raise MalformedRequest("lease_ref.lease_id is not a lease of ours.", field="lease_id")
    hold, _, token = lease_id.partition(".")
    hold_id = wire.as_uuid(hold, "lease_id")
    assert hold_id is not None
    return hold_id, token


async def create_lease(principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    lease = body.get("lease")
    if not isinstance(lease, dict):
        raise MalformedRequest("lease is required.", field="lease")
    slot = wire.parse_slot(lease.get("slot"), field="lease.slot")
    checked = await _check_bookable(principal, slot)
    if isinstance(checked, str):
        return {"booking_failure": wire.failure(wire.SLOT_UNAVAILABLE, checked)}
    business, service = checked
    try:
        held = await create_hold(
            principal,
            business,
            service,
            slot.starts_at,
            staff_id=wire.as_uuid(slot.staff_id, "staff_id"),
            resource_id=wire.as_uuid(slot.room_id, "room_id"),
        )
    except SlotTaken as exc:
        return {"booking_failure": wire.failure(wire.SLOT_UNAVAILABLE, exc.detail)}
    row = held.booking
    expires: datetime = row["hold_expires_at"]
    out: dict[str, Any] = {
        "lease_id": f"{row['id']}.{held.hold_token}",
        "slot": wire.slot_json(row, slot.party_size),
        "lease_expiration_time_sec": str(int(expires.timestamp())),
    }
    if "user_reference" in lease:
        out["user_reference"] = lease["user_reference"]
    return {"lease": out}


async def _own_booking(principal: Principal, raw_id: Any) -> dict[str, Any]:
    if not isinstance(raw_id, str):
        raise MalformedRequest("booking_id is required.", field="booking_id")
    booking_id = wire.as_uuid(raw_id, "booking_id")
    assert booking_id is not None
    row = await get_booking(principal, booking_id)
    if row.get("partner_id") != principal.partner_id:
        raise NotFound("No such booking.")
    return row


async def update(principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    booking = body.get("booking")
    if not isinstance(booking, dict):
        raise MalformedRequest("booking is required.", field="booking")
    row = await _own_booking(principal, booking.get("booking_id"))
    try:
        if booking.get("status") == "CANCELED":
            row = await transition(principal, row["id"], "cancel", reason="Actions Center")
        elif "slot" in booking:
            slot = wire.parse_slot(booking["slot"], str(row["business_id"]))
            if slot.merchant_id != str(row["business_id"]):
                raise MalformedRequest("A booking cannot move to another merchant.")
            checked = await _check_bookable(principal, slot)
            if isinstance(checked, str):
                return {"booking_failure": wire.failure(wire.SLOT_UNAVAILABLE, checked)}
            _, service = checked
            row = await change_booking(
                principal,
                row["id"],
                ChangeRequest(
                    starts_at=slot.starts_at,
                    staff_id=wire.as_uuid(slot.staff_id, "staff_id"),
                    service_id=service if service != row["service_id"] else None,
                    resource_id=wire.as_uuid(slot.room_id, "room_id"),
                ),
            )
        else:
            raise MalformedRequest("Say what to update: status CANCELED or a new slot.")
    except SlotTaken as exc:
        return {"booking_failure": wire.failure(wire.SLOT_UNAVAILABLE, exc.detail)}
    except PolicyViolation as exc:
        cause = (
            wire.OUTSIDE_CANCELLATION_WINDOW
            if booking.get("status") == "CANCELED"
            else wire.SLOT_UNAVAILABLE
        )
        return {"booking_failure": wire.failure(cause, exc.detail)}
    return {"booking": wire.booking_json(row)}


async def status(principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    row = await _own_booking(principal, body.get("booking_id"))
    return {
        "booking_id": str(row["id"]),
        "booking_status": wire.STATUS_BY_OURS.get(str(row["status"]), "CONFIRMED"),
        "prepayment_status": "PREPAYMENT_NOT_PROVIDED",
    }


async def list_for_user(principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    user_id = body.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        raise MalformedRequest("user_id is required.", field="user_id")
    businesses = list(principal.business_ids)
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT id, business_id, service_id, staff_id, resource_id, starts_at, ends_at, "
            "status FROM booking WHERE business_id = ANY($1::uuid[]) AND partner_id = $2 "
            "AND notes = $3 AND starts_at > now() - $4::interval ORDER BY starts_at, id",
            businesses,
            principal.partner_id,
            USER_TAG + user_id,
            timedelta(days=365),
        )
    return {"bookings": [wire.booking_json(dict(r)) for r in rows]}
