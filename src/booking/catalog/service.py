"""Businesses, staff and services: reads, creation and changes, each change in one
transaction with its audit entry (and its lost-slot recovery where one is needed).

Managers act on their own business only, admins on any; only admins create businesses.
Another tenant's ids answer 404 exactly like ids that do not exist.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from msgspec import UNSET

from booking import db
from booking.access.principal import Principal
from booking.catalog import audit, rules
from booking.catalog.hours import strand_ineligible, strand_outside_hours
from booking.catalog.schemas import (
    BusinessCreate,
    BusinessOut,
    BusinessPatch,
    ServiceCreate,
    ServiceOut,
    ServicePatch,
    StaffCreate,
    StaffOut,
    StaffPatch,
    StrandedBooking,
)
from booking.errors import AlreadyExists, Forbidden, InvalidInput, NotFound
from booking.guarantee import offers
from booking.schedule_changes import schedule_changed
from booking.wire_time import forget_zone

_BUSINESS_COLUMNS = ", ".join(BusinessOut.__struct_fields__)
_STAFF_COLUMNS = "id, name, active, phone"
_SERVICE_SQL = """
    SELECT s.id, s.name, s.duration_minutes, s.buffer_before_minutes, s.buffer_after_minutes,
           s.price_cents, s.currency, s.requires_confirmation, s.active,
           ARRAY(SELECT staff_id FROM service_staff
                 WHERE business_id = s.business_id AND service_id = s.id
                 ORDER BY staff_id) AS staff_ids
    FROM service s WHERE s.business_id = $1
"""


def _changes(patch: msgspec.Struct, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        name: getattr(patch, name)
        for name in patch.__struct_fields__
        if name not in skip and getattr(patch, name) is not UNSET
    }


def _nothing_to_change(changes: dict[str, Any]) -> None:
    if not changes:
        raise InvalidInput("Nothing to change: name at least one field.")


# ---- businesses ------------------------------------------------------------------


def business_out(row: asyncpg.Record | dict[str, Any], principal: Principal) -> BusinessOut:
    out = BusinessOut(**{name: row[name] for name in BusinessOut.__struct_fields__})
    if not principal.is_staff:  # the on-duty phone is for the business's own people
        out.on_duty_phone = None
    return out


async def _business(conn: asyncpg.Connection, business_id: UUID, *, lock: bool) -> Any:
    row = await conn.fetchrow(
        f"SELECT {_BUSINESS_COLUMNS} FROM business WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        business_id,
    )
    if row is None:
        raise NotFound("No such business.")
    return row


async def get_business(principal: Principal, business_id: UUID) -> BusinessOut:
    principal.require_business(business_id)
    async with db.connection() as conn:
        return business_out(await _business(conn, business_id, lock=False), principal)


async def list_businesses(principal: Principal) -> list[BusinessOut]:
    async with db.connection() as conn:
        if principal.kind == "admin":
            rows = await conn.fetch(f"SELECT {_BUSINESS_COLUMNS} FROM business ORDER BY name, id")
        else:
            rows = await conn.fetch(
                f"SELECT {_BUSINESS_COLUMNS} FROM business WHERE id = ANY($1::uuid[]) "
                "ORDER BY name, id",
                list(principal.business_ids),
            )
    return [business_out(row, principal) for row in rows]


def _business_values(values: dict[str, Any]) -> dict[str, Any]:
    checked = dict(values)
    if "time_zone" in checked:
        checked["time_zone"] = rules.time_zone(checked["time_zone"])
    if "locale" in checked:
        checked["locale"] = rules.locale(checked["locale"])
    if "on_duty_phone" in checked:
        checked["on_duty_phone"] = rules.phone(checked["on_duty_phone"], "on_duty_phone")
    if "reminder_offsets_minutes" in checked:
        checked["reminder_offsets_minutes"] = rules.reminder_offsets(
            checked["reminder_offsets_minutes"]
        )
    if "name" in checked and not checked["name"].strip():
        raise InvalidInput("name must not be blank.", field="name")
    return checked


async def claim_slug(conn: asyncpg.Connection, slug: str, business_id: UUID) -> None:
    """Reserve the slug in ``business_slug`` (its primary key is the guard that holds on
    Citus too, where ``business_slug_key`` cannot: docs/scaling.md); 409 when taken."""
    try:
        async with conn.transaction():  # a savepoint: the caller's transaction goes on
            await conn.execute(
                "INSERT INTO business_slug (slug, business) VALUES ($1, $2)", slug, business_id
            )
    except asyncpg.UniqueViolationError as exc:
        raise AlreadyExists("A business with that slug exists.", field="slug") from exc


async def create_business(principal: Principal, data: BusinessCreate) -> BusinessOut:
    if principal.kind != "admin":
        raise Forbidden("Only an admin creates businesses.")
    values = _business_values(msgspec.structs.asdict(data))
    columns = list(values)
    async with db.transaction() as conn:
        if await conn.fetchval("SELECT 1 FROM business WHERE slug = $1", values["slug"]):
            raise AlreadyExists("A business with that slug exists.", field="slug")
        row = await conn.fetchrow(
            f"INSERT INTO business ({', '.join(columns)}) VALUES "
            f"({', '.join(f'${i}' for i in range(1, len(columns) + 1))}) "
            f"RETURNING {_BUSINESS_COLUMNS}",
            *values.values(),
        )
        assert row is not None
        await claim_slug(conn, row["slug"], row["id"])
        out = business_out(row, principal)
        await audit.record(
            conn, principal, row["id"], "business", row["id"], "created", audit.diff(None, out)
        )
    return out


async def patch_business(
    principal: Principal, business_id: UUID, data: BusinessPatch, if_match: str | None
) -> tuple[BusinessOut, list[StrandedBooking]]:
    """Change settings; a new time zone moves every working hour in absolute time, so
    bookings left outside their staff's hours go through the lost-slot recovery."""
    principal.require_manager(business_id)
    changes = _business_values(_changes(data))
    _nothing_to_change(changes)
    async with db.transaction() as conn:
        before = business_out(await _business(conn, business_id, lock=True), principal)
        audit.check_if_match(if_match, before)
        sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=2))
        row = await conn.fetchrow(
            f"UPDATE business SET {sets} WHERE id = $1 RETURNING {_BUSINESS_COLUMNS}",
            business_id,
            *changes.values(),
        )
        assert row is not None
        after = business_out(row, principal)
        stranded: list[StrandedBooking] = []
        if after.time_zone != before.time_zone:
            forget_zone(business_id)  # this process answers in the new zone at once
            staff_ids = [
                r["id"]
                for r in await conn.fetch(
                    "SELECT id FROM staff WHERE business_id = $1 AND active", business_id
                )
            ]
            await schedule_changed(conn, business_id, "time_zone", aggregate_id=business_id)
            stranded = await strand_outside_hours(
                conn, principal, business_id, staff_ids, "the business's time zone changed"
            )
        await audit.record(
            conn, principal, business_id, "business", business_id, "changed",
            audit.diff(before, after),
        )  # fmt: skip
    return after, stranded


# ---- staff -----------------------------------------------------------------------


def staff_out(row: asyncpg.Record | dict[str, Any]) -> StaffOut:
    return StaffOut(id=row["id"], name=row["name"], active=row["active"], phone=row["phone"])


async def _staff(
    conn: asyncpg.Connection, business_id: UUID, staff_id: UUID, *, lock: bool
) -> StaffOut:
    row = await conn.fetchrow(
        f"SELECT {_STAFF_COLUMNS} FROM staff WHERE id = $1 AND business_id = $2"
        + (" FOR UPDATE" if lock else ""),
        staff_id,
        business_id,
    )
    if row is None:
        raise NotFound("No such member of staff at this business.")
    return staff_out(row)


async def list_staff(principal: Principal, business_id: UUID) -> list[StaffOut]:
    principal.require_business(business_id)
    async with db.connection() as conn:
        rows = await conn.fetch(
            f"SELECT {_STAFF_COLUMNS} FROM staff WHERE business_id = $1 ORDER BY name, id",
            business_id,
        )
    return [staff_out(row) for row in rows]


async def get_staff(principal: Principal, business_id: UUID, staff_id: UUID) -> StaffOut:
    principal.require_business(business_id)
    async with db.connection() as conn:
        return await _staff(conn, business_id, staff_id, lock=False)


async def create_staff(principal: Principal, business_id: UUID, data: StaffCreate) -> StaffOut:
    principal.require_manager(business_id)
    if not data.name.strip():
        raise InvalidInput("name must not be blank.", field="name")
    phone = rules.phone(data.phone, "phone")
    async with db.transaction() as conn:
        await _business(conn, business_id, lock=False)
        row = await conn.fetchrow(
            f"INSERT INTO staff (business_id, name, phone) VALUES ($1, $2, $3) "
            f"RETURNING {_STAFF_COLUMNS}",
            business_id,
            data.name.strip(),
            phone,
        )
        assert row is not None
        out = staff_out(row)
        await audit.record(
            conn, principal, business_id, "staff", out.id, "created", audit.diff(None, out)
        )
    return out


async def patch_staff(
    principal: Principal,
    business_id: UUID,
    staff_id: UUID,
    data: StaffPatch,
    if_match: str | None,
) -> tuple[StaffOut, list[StrandedBooking]]:
    """Rename, change the phone, deactivate or reactivate. Deactivation is the
    guarantee's own (:func:`booking.guarantee.offers.deactivate_staff`), run inside
    this transaction: every future booking is put at risk with an offer."""
    principal.require_manager(business_id)
    changes = _changes(data, skip=("reason",))
    _nothing_to_change(changes)
    if "name" in changes:
        if not changes["name"].strip():
            raise InvalidInput("name must not be blank.", field="name")
        changes["name"] = changes["name"].strip()
    if "phone" in changes:
        changes["phone"] = rules.phone(changes["phone"], "phone")
    active = changes.pop("active", None)
    stranded: list[StrandedBooking] = []
    async with db.transaction() as conn:
        before = await _staff(conn, business_id, staff_id, lock=True)
        audit.check_if_match(if_match, before)
        if changes:
            sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=2))
            await conn.execute(
                f"UPDATE staff SET {sets} WHERE id = $1", staff_id, *changes.values()
            )
        action = "changed"
        if active is False and before.active:
            outcome = await offers.deactivate_staff(
                principal, business_id, staff_id, reason=data.reason
            )
            stranded = await _stranded_from(conn, outcome)
            action = "deactivated"
        elif active is True and not before.active:
            await conn.execute("UPDATE staff SET active = true WHERE id = $1", staff_id)
            await schedule_changed(conn, business_id, "staff_reactivated", aggregate_id=staff_id)
            action = "reactivated"
        after = await _staff(conn, business_id, staff_id, lock=False)
        await audit.record(
            conn, principal, business_id, "staff", staff_id, action, audit.diff(before, after)
        )
    return after, stranded


async def _stranded_from(
    conn: asyncpg.Connection, outcome: offers.LostSlotOutcome
) -> list[StrandedBooking]:
    offer_by_booking = {offer["booking_id"]: offer for offer in outcome.offers}
    rows = await conn.fetch(
        "SELECT id, reference_code, starts_at FROM booking WHERE id = ANY($1::uuid[]) "
        "ORDER BY starts_at, id",
        outcome.affected,
    )
    return [
        StrandedBooking(
            booking_id=row["id"],
            reference_code=row["reference_code"],
            starts_at=row["starts_at"],
            offer_id=offer_by_booking[row["id"]]["id"] if row["id"] in offer_by_booking else None,
            offer_status=(
                offer_by_booking[row["id"]]["status"] if row["id"] in offer_by_booking else None
            ),
        )
        for row in rows
    ]


# ---- services --------------------------------------------------------------------


def service_out(row: asyncpg.Record | dict[str, Any]) -> ServiceOut:
    return ServiceOut(**{name: row[name] for name in ServiceOut.__struct_fields__})


async def _service(
    conn: asyncpg.Connection, business_id: UUID, service_id: UUID, *, lock: bool
) -> ServiceOut:
    if lock:
        locked = await conn.fetchval(
            "SELECT id FROM service WHERE id = $1 AND business_id = $2 FOR UPDATE",
            service_id,
            business_id,
        )
        if locked is None:
            raise NotFound("No such service at this business.")
    row = await conn.fetchrow(_SERVICE_SQL + " AND s.id = $2", business_id, service_id)
    if row is None:
        raise NotFound("No such service at this business.")
    return service_out(row)


async def list_services(
    principal: Principal, business_id: UUID, *, include_inactive: bool
) -> list[ServiceOut]:
    principal.require_business(business_id)
    async with db.connection() as conn:
        rows = await conn.fetch(
            _SERVICE_SQL + ("" if include_inactive else " AND s.active") + " ORDER BY s.name, s.id",
            business_id,
        )
    return [service_out(row) for row in rows]


async def get_service(principal: Principal, business_id: UUID, service_id: UUID) -> ServiceOut:
    principal.require_business(business_id)
    async with db.connection() as conn:
        return await _service(conn, business_id, service_id, lock=False)


async def _check_staff(
    conn: asyncpg.Connection, business_id: UUID, staff_ids: list[UUID]
) -> list[UUID]:
    wanted = sorted(set(staff_ids))
    if len(wanted) != len(staff_ids):
        raise InvalidInput("staff_ids names someone twice.", field="staff_ids")
    known = {
        row["id"]
        for row in await conn.fetch(
            "SELECT id FROM staff WHERE business_id = $1 AND id = ANY($2::uuid[])",
            business_id,
            wanted,
        )
    }
    unknown = [staff_id for staff_id in wanted if staff_id not in known]
    if unknown:  # another business's staff look exactly like ids that do not exist
        raise InvalidInput(
            "staff_ids names no member of staff of this business: "
            + ", ".join(str(staff_id) for staff_id in unknown),
            field="staff_ids",
        )
    return wanted


def _service_values(values: dict[str, Any]) -> dict[str, Any]:
    if "currency" in values:
        values["currency"] = rules.currency(values["currency"])
    if "name" in values:
        if not values["name"].strip():
            raise InvalidInput("name must not be blank.", field="name")
        values["name"] = values["name"].strip()
    return values


async def create_service(
    principal: Principal, business_id: UUID, data: ServiceCreate
) -> ServiceOut:
    principal.require_manager(business_id)
    values = _service_values(msgspec.structs.asdict(data))
    staff_ids = values.pop("staff_ids")
    async with db.transaction() as conn:
        await _business(conn, business_id, lock=False)
        staff_ids = await _check_staff(conn, business_id, staff_ids)
        columns = list(values)
        service_id = await conn.fetchval(
            f"INSERT INTO service (business_id, {', '.join(columns)}) VALUES ($1, "
            f"{', '.join(f'${i}' for i in range(2, len(columns) + 2))}) RETURNING id",
            business_id,
            *values.values(),
        )
        await conn.executemany(
            "INSERT INTO service_staff (business_id, service_id, staff_id) VALUES ($1, $2, $3)",
            [(business_id, service_id, staff_id) for staff_id in staff_ids],
        )
        out = await _service(conn, business_id, service_id, lock=False)
        await audit.record(
            conn, principal, business_id, "service", service_id, "created", audit.diff(None, out)
        )
    return out


async def patch_service(
    principal: Principal,
    business_id: UUID,
    service_id: UUID,
    data: ServicePatch,
    if_match: str | None,
) -> tuple[ServiceOut, list[StrandedBooking]]:
    """Change a service. Staff taken off it lose their future bookings of it to the
    lost-slot recovery (same service, the staff who still offer it), in this transaction;
    deactivating it stops new bookings and keeps the existing ones."""
    principal.require_manager(business_id)
    changes = _service_values(_changes(data))
    _nothing_to_change(changes)
    staff_ids = changes.pop("staff_ids", None)
    active = changes.pop("active", None)
    stranded: list[StrandedBooking] = []
    async with db.transaction() as conn:
        before = await _service(conn, business_id, service_id, lock=True)
        audit.check_if_match(if_match, before)
        if changes:
            sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=2))
            await conn.execute(
                f"UPDATE service SET {sets} WHERE id = $1", service_id, *changes.values()
            )
        if staff_ids is not None:
            wanted = await _check_staff(conn, business_id, staff_ids)
            removed = [s for s in before.staff_ids if s not in wanted]
            await conn.execute(
                "DELETE FROM service_staff WHERE business_id = $1 AND service_id = $2 "
                "AND NOT staff_id = ANY($3)",
                business_id,
                service_id,
                wanted,
            )
            await conn.executemany(
                "INSERT INTO service_staff (business_id, service_id, staff_id) "
                "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                [(business_id, service_id, staff_id) for staff_id in wanted],
            )
            if removed:
                stranded = await strand_ineligible(
                    conn, principal, business_id, service_id, removed, active=before.active
                )
        if active is not None and active != before.active:
            await conn.execute("UPDATE service SET active = $2 WHERE id = $1", service_id, active)
        after = await _service(conn, business_id, service_id, lock=False)
        if after.active != before.active:  # all its slots close or open
            cause = "service_reactivated" if after.active else "service_deactivated"
            await schedule_changed(conn, business_id, cause, aggregate_id=service_id)
        elif _slot_shape(before) != _slot_shape(after):
            await schedule_changed(conn, business_id, "service", aggregate_id=service_id)
        await audit.record(
            conn, principal, business_id, "service", service_id, "changed",
            audit.diff(before, after),
        )  # fmt: skip
    return after, stranded


def _slot_shape(service: ServiceOut) -> tuple[object, ...]:
    """What of a service decides its slots: who offers it and how long it blocks them.
    (Deactivating or reactivating one is an event of its own: every slot of it changes.)"""
    return (
        service.staff_ids,
        service.duration_minutes,
        service.buffer_before_minutes,
        service.buffer_after_minutes,
    )
