"""The v3 methods over our own operations: availability search, holds, the one
booking write path (create_booking / confirm_hold / change_booking / transition)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any
from uuid import UUID

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.availability.answer import availability
from booking.bookings.changes import ChangeRequest, change_booking
from booking.bookings.checks import CustomerInput
from booking.bookings.holds import confirm_hold, create_hold
from booking.bookings.placing import create_booking
from booking.bookings.queries import get_booking, made_since
from booking.bookings.transitions import transition
from booking.errors import (
    DomainError,
    HoldExpired,
    InvalidTransition,
    MalformedRequest,
    NotFound,
    PolicyViolation,
    SlotNotOffered,
    SlotTaken,
)
from booking.marketplace import wire
from booking.marketplace.wire import SlotRef, SlotTime

USER_TAG = "actions_center_user_id="


# One round trip for what a v3 call checks before it acts: the merchant is listed for
# this partner, the service (its length; whether it is still offered), and - for a
# create - whether this user holds a booking at that start already ($4 NULL: not asked).
_CHECK = """
SELECT EXISTS (
           SELECT 1 FROM marketplace_listing WHERE business_id = $1 AND partner_id = $3
       ) AS listed,
       (SELECT CASE WHEN active THEN duration_minutes ELSE 0 END FROM service
        WHERE business_id = $1 AND id = $2) AS minutes,
       $4::text IS NOT NULL AND EXISTS (
           SELECT 1 FROM booking WHERE business_id = $1 AND partner_id = $3
           AND notes = $4 AND starts_at = $5 AND status IN ('held','pending','confirmed')
       ) AS already_booked
"""


# The same checks read in CreateBooking's idempotency claim statement, whose own
# parameters are $1-$8 (idempotency.claim(read=...)): one round trip less per create.
_CHECK_WITH_CLAIM = re.sub(r"\$(\d+)", lambda m: f"${int(m[1]) + 8}", _CHECK)


def _check_args(
    principal: Principal,
    merchant_id: str,
    service_id: str,
    starts_at: datetime,
    user_id: str | None = None,
) -> tuple[UUID, UUID, tuple[Any, ...]]:
    """(business, service, the parameters of _CHECK); another tenant's merchant is
    missing, an id that is no UUID names nothing of ours."""
    business = wire.as_uuid(merchant_id, "merchant_id")
    service = wire.as_uuid(service_id, "service_id")
    assert business is not None
    assert service is not None
    principal.require_business(business)  # another tenant's merchant looks missing
    tag = None if user_id is None else USER_TAG + user_id
    return business, service, (business, service, principal.partner_id, tag, starts_at)


def _checked(row: asyncpg.Record | None) -> tuple[int, bool]:
    """(duration in seconds, already booked by the user) from _CHECK's row; a merchant not
    listed for the partner is missing, and so is a service that never was. A service
    deactivated since the feeds named it has duration 0: no slot of it is available."""
    assert row is not None
    if not row["listed"]:
        raise NotFound("No such merchant.")  # not listed for this partner
    if row["minutes"] is None:
        raise NotFound("No such merchant or service.")
    return int(row["minutes"]) * 60, bool(row["already_booked"])


async def _service_duration(
    principal: Principal,
    merchant_id: str,
    service_id: str,
    starts_at: datetime,
    user_id: str | None = None,
    read: asyncpg.Record | None = None,
) -> tuple[UUID, UUID, int, bool]:
    """(business, service, duration in seconds, whether ``user_id`` already booked
    ``starts_at``); ``read``: _CHECK's row when the idempotency claim read it already."""
    business, service, args = _check_args(principal, merchant_id, service_id, starts_at, user_id)
    if read is None:
        async with db.connection() as conn:
            read = await conn.fetchrow(_CHECK, *args)
    duration, already = _checked(read)
    return business, service, duration, already


def _uuid_int(text: str) -> int | None:
    try:
        return UUID(text).int
    except ValueError:
        return None  # names nothing of ours


_start_of = attrgetter("start_sec")


async def lookup(principal: Principal, merchant_id: str, slots: list[SlotTime]) -> list[bool]:
    """Whether each slot is free, in order (a slot without its own merchant_id is
    ``merchant_id``'s): one availability search per service for the whole range asked
    about - the REST availability answer - each slot answered from it. A batch holds
    thousands of slots, so each service's slots are answered in one pass over the list,
    straight from the decoded SlotTimes."""
    answer = [False] * len(slots)
    if not slots:
        return answer
    now = int(datetime.now(UTC).timestamp())
    services = set(map(attrgetter("service_id"), slots))
    merchants = set(map(attrgetter("merchant_id"), slots)) - {None, merchant_id}
    groups: dict[tuple[str, str], list[int]] = {}  # (merchant, service) -> its slots
    if len(services) == 1 and not merchants:  # the usual batch: one service
        groups[merchant_id, slots[0].service_id] = list(range(len(slots)))
    else:
        for i, s in enumerate(slots):
            groups.setdefault((s.merchant_id or merchant_id, s.service_id), []).append(i)
    ids: dict[str, int | None] = {}  # staff and room ids as sent -> UUID as int
    for key, indices in groups.items():
        group = slots if len(indices) == len(slots) else [slots[i] for i in indices]
        starts = list(map(_start_of, group))
        business, service, duration, _ = await _service_duration(
            principal, key[0], key[1], datetime.fromtimestamp(starts[0], UTC)
        )
        if not duration:
            continue  # deactivated since the feeds named it: none of its slots is free
        low = max(now + 1, min(starts))
        high = max(starts) + 1
        for start in range(low, high, 60 * 86400):  # the search spans at most 62 days
            end = min(high, start + 60 * 86400)
            _, times = await availability(
                business,
                service,
                datetime.fromtimestamp(start, UTC),
                datetime.fromtimestamp(end, UTC),
            )
            free = {int(begin.timestamp()): (staff, rooms) for begin, _end, staff, rooms in times}
            staff_at: dict[int, set[int]] = {}  # built for the starts asked about
            rooms_at: dict[int, set[int]] = {}
            for i, slot in zip(indices, group, strict=True):
                if slot.duration_sec != duration:
                    continue
                found = free.get(slot.start_sec)  # none in the past or before notice
                if found is None:
                    continue
                resources = slot.resources or slot.resource_ids
                if resources is not None:
                    if resources.party_size is not None and resources.party_size != 1:
                        continue
                    if resources.staff_id is not None:
                        member = ids.get(resources.staff_id, -1)
                        if member == -1:
                            member = ids[resources.staff_id] = _uuid_int(resources.staff_id)
                        members = staff_at.get(slot.start_sec)
                        if members is None:
                            members = staff_at[slot.start_sec] = {u.int for u in found[0]}
                        if member not in members:
                            continue
                    if resources.room_id is not None:
                        if found[1] is None:
                            continue
                        room = ids.get(resources.room_id, -1)
                        if room == -1:
                            room = ids[resources.room_id] = _uuid_int(resources.room_id)
                        rooms = rooms_at.get(slot.start_sec)
                        if rooms is None:
                            rooms = rooms_at[slot.start_sec] = {u.int for u in found[1]}
                        if room not in rooms:
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


async def _check_bookable(
    principal: Principal,
    slot: SlotRef,
    user_id: str | None = None,
    read: asyncpg.Record | None = None,
) -> tuple[UUID, UUID] | dict[str, Any]:
    """(business, service), or the booking_failure that answers the call."""
    business, service, duration, already = await _service_duration(
        principal, slot.merchant_id, slot.service_id, slot.starts_at, user_id, read
    )
    if not duration:
        return wire.failure(wire.SLOT_UNAVAILABLE, "The service is no longer offered.")
    if slot.duration_sec != duration:
        return wire.failure(wire.SLOT_UNAVAILABLE, "The service has no slot of that duration.")
    if slot.start_sec <= int(datetime.now(UTC).timestamp()):
        return wire.failure(wire.SLOT_UNAVAILABLE, "The slot is in the past.")
    if (slot.party_size or 1) != 1:
        return wire.failure(wire.SLOT_UNAVAILABLE, "Appointments take one person.")
    if already:
        return wire.failure(wire.SLOT_ALREADY_BOOKED_BY_USER, "This user already booked that slot.")
    return business, service


def create_checks(principal: Principal, body: dict[str, Any]) -> tuple[str, tuple[Any, ...]] | None:
    """What :func:`create` reads first (_CHECK), for the idempotency claim to read in its
    own statement (``idempotency.claim(read=...)``, the row then given to ``create``);
    None when the body does not get that far - ``create`` then answers it as always."""
    try:
        slot = wire.parse_slot(body.get("slot"))
        _, user_id = _customer(body.get("user_information"))
        asked = None if body.get("lease_ref") is not None else user_id
        _, _, args = _check_args(
            principal, slot.merchant_id, slot.service_id, slot.starts_at, asked
        )
    except DomainError:
        return None
    return _CHECK_WITH_CLAIM, args


async def create(
    principal: Principal,
    body: dict[str, Any],
    read: asyncpg.Record | None = None,
    resumed_since: datetime | None = None,
) -> dict[str, Any]:
    """CreateBooking; ``read``: the row of :func:`create_checks`, read with the claim.

    ``resumed_since``: this call took over the idempotency claim of a twin that died
    (``idempotency.Claimed``) after claiming the token at that time. If that twin's
    booking committed, it is answered again - the same booking, not a second one and
    not "already booked by the user" for the user's own retry."""
    slot = wire.parse_slot(body.get("slot"))
    customer, user_id = _customer(body.get("user_information"))
    lease = body.get("lease_ref")
    if resumed_since is not None and lease is None:
        business, service, _ = _check_args(
            principal, slot.merchant_id, slot.service_id, slot.starts_at
        )
        made = await made_since(
            principal,
            business,
            resumed_since,
            service_id=service,
            starts_at=slot.starts_at,
            notes=USER_TAG + user_id,
        )
        if made is not None:
            return {"booking": wire.booking_json(made, _user_out(body["user_information"]))}
    # A lease is this user's own hold on the slot: not "already booked".
    asked = None if lease is not None else user_id
    checked = await _check_bookable(principal, slot, asked, read)
    if isinstance(checked, dict):
        return {"booking_failure": checked}
    business, service = checked
    try:
        if lease is not None:
            hold_id, token = _lease_parts(lease)
            try:
                row = await confirm_hold(
                    principal,
                    hold_id,
                    token,
                    customer,
                    notes=USER_TAG + user_id,
                    resumed_since=resumed_since,
                )
            except InvalidTransition as exc:
                return {"booking_failure": await _lease_used(principal, hold_id, user_id, exc)}
        else:
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
    except (SlotTaken, SlotNotOffered) as exc:
        return {"booking_failure": wire.failure(wire.SLOT_UNAVAILABLE, exc.detail)}
    except HoldExpired as exc:
        return {"booking_failure": wire.failure(wire.LEASE_EXPIRED, exc.detail)}
    except PolicyViolation as exc:  # e.g. minimum notice
        return {"booking_failure": wire.failure(wire.SLOT_UNAVAILABLE, exc.detail)}
    return {"booking": wire.booking_json(row, _user_out(body["user_information"]))}


async def _lease_used(
    principal: Principal, hold_id: UUID, user_id: str, refused: InvalidTransition
) -> dict[str, Any]:
    """Why a CreateBooking on a lease that is no longer a hold fails (HTTP 200, as the v3
    reference answers business failures): this user booked it already, or it is gone."""
    row = await get_booking(principal, hold_id)
    mine = row.get("partner_id") == principal.partner_id and row["notes"] == USER_TAG + user_id
    if mine and row["status"] not in ("cancelled", "expired", "no_show"):
        return wire.failure(wire.SLOT_ALREADY_BOOKED_BY_USER, "This lease is already booked.")
    return wire.failure(wire.LEASE_EXPIRED, refused.detail)


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
    if isinstance(checked, dict):
        return {"booking_failure": checked}
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
    except (SlotTaken, SlotNotOffered) as exc:
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
            if isinstance(checked, dict):
                return {"booking_failure": checked}
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
    except (SlotTaken, SlotNotOffered) as exc:
        return {"booking_failure": wire.failure(wire.SLOT_UNAVAILABLE, exc.detail)}
    except (PolicyViolation, InvalidTransition) as exc:
        # A business logic refusal is a booking_failure with HTTP 200 (the v3 reference).
        cancel = booking.get("status") == "CANCELED"
        if cancel and isinstance(exc, InvalidTransition):
            now = await _own_booking(principal, booking.get("booking_id"))
            if now["status"] == "cancelled":  # a repeated cancel: it is what was asked
                return {"booking": wire.booking_json(now)}
        cause = wire.OUTSIDE_CANCELLATION_WINDOW if cancel else wire.SLOT_UNAVAILABLE
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
