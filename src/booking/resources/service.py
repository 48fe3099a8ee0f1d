"""Resources per business: create, rename, regroup, deactivate (with the lost-slot
recovery for the bookings that held one), and what a service needs.

Like the catalog (:mod:`booking.catalog.audit`): reads answer an ETag (a hash of the
representation), changes honour ``If-Match`` (412 when stale) and each change writes
its ``catalog_audit`` row (entity ``resource``, or ``service`` for its needs) in the
change's transaction, and a change that may open or close slots (a resource in a group
added, regrouped, (de)activated; a service's group) its ``schedule.changed`` event
(:mod:`booking.schedule_changes`).

Members of staff are resources too (kind ``staff``, same id, kept by a trigger); they
are managed through the staff endpoints and never appear here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from msgspec import UNSET

from booking import db
from booking.access.principal import Principal
from booking.bookings.store import BOOKING_COLUMNS
from booking.catalog import audit
from booking.errors import InvalidInput, NotFound
from booking.guarantee.offers import open_lost_slot_offer
from booking.resources.schemas import ResourceCreate, ResourceOut, ResourcePatch, ServiceNeedsOut
from booking.schedule_changes import schedule_changed

_COLUMNS = 'id, business_id, kind, name, group_name AS "group", active, created_at'


async def _resource(
    conn: asyncpg.Connection, business_id: UUID, resource_id: UUID, *, lock: bool
) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM resource WHERE business_id = $1 AND id = $2 "
        "AND kind <> 'staff'" + (" FOR UPDATE" if lock else ""),
        business_id,
        resource_id,
    )
    if row is None:
        raise NotFound("No such resource at this business.")
    return row


async def list_resources(
    principal: Principal, business_id: UUID, group: str | None = None
) -> list[dict[str, Any]]:
    principal.require("availability:read", business_id)
    async with db.connection() as conn:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM resource WHERE business_id = $1 AND kind <> 'staff' "
            "AND ($2::text IS NULL OR group_name = $2) ORDER BY group_name, name, id",
            business_id,
            group,
        )
    return [dict(row) for row in rows]


async def get_resource(
    principal: Principal, business_id: UUID, resource_id: UUID
) -> dict[str, Any]:
    principal.require("availability:read", business_id)
    async with db.connection() as conn:
        return dict(await _resource(conn, business_id, resource_id, lock=False))


async def create_resource(
    principal: Principal, business_id: UUID, data: ResourceCreate
) -> dict[str, Any]:
    principal.require_manager(business_id)
    if not data.name.strip():
        raise InvalidInput("name must not be blank.", field="name")
    async with db.transaction() as conn:
        if not await conn.fetchval("SELECT true FROM business WHERE id = $1", business_id):
            raise NotFound("No such business.")
        row = await conn.fetchrow(
            f"INSERT INTO resource (business_id, kind, name, group_name) "
            f"VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}",
            business_id,
            data.kind,
            data.name.strip(),
            data.group.strip() if data.group else None,
        )
        assert row is not None
        if row["group"] is not None:  # services needing that group may have more slots
            await schedule_changed(conn, business_id, "resource", aggregate_id=row["id"])
        await audit.record(
            conn, principal, business_id, "resource", row["id"], "created",
            audit.diff(None, ResourceOut(**row)),
        )  # fmt: skip
    return dict(row)


async def patch_resource(
    principal: Principal,
    business_id: UUID,
    resource_id: UUID,
    data: ResourcePatch,
    if_match: str | None = None,
) -> tuple[dict[str, Any], list[UUID], list[dict[str, Any]]]:
    """Rename, regroup, deactivate or reactivate. Deactivating runs the lost-slot
    recovery in the same transaction: every future booking holding the resource is
    marked at risk and offered held alternatives (with another resource of the group)."""
    principal.require_manager(business_id)
    changes: dict[str, Any] = {}
    if isinstance(data.name, str):
        if not data.name.strip():
            raise InvalidInput("name must not be blank.", field="name")
        changes["name"] = data.name.strip()
    if data.group is not UNSET:
        changes["group_name"] = data.group.strip() if isinstance(data.group, str) else None
    if isinstance(data.active, bool):
        changes["active"] = data.active
    if not changes:
        raise InvalidInput("Say what to change: name, group or active.")
    affected: list[asyncpg.Record] = []
    offers: list[dict[str, Any]] = []
    async with db.transaction() as conn:
        before = await _resource(conn, business_id, resource_id, lock=True)
        audit.check_if_match(if_match, ResourceOut(**before))
        sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=3))
        row = await conn.fetchrow(
            f"UPDATE resource SET {sets} WHERE business_id = $1 AND id = $2 RETURNING {_COLUMNS}",
            business_id,
            resource_id,
            *changes.values(),
        )
        assert row is not None
        if (before["group"], before["active"]) != (row["group"], row["active"]):
            await schedule_changed(conn, business_id, "resource", aggregate_id=resource_id)
        if before["active"] and not row["active"]:
            affected = list(
                await conn.fetch(
                    f"""
                    SELECT {BOOKING_COLUMNS} FROM booking b
                    WHERE b.business_id = $1 AND b.resource_id = $2
                      AND b.status IN ('pending', 'confirmed') AND b.starts_at > $3
                    ORDER BY b.starts_at, b.id
                    FOR UPDATE
                    """,
                    business_id,
                    resource_id,
                    datetime.now(UTC),
                )
            )
            label = f"{row['name']} unavailable" + (f": {data.reason}" if data.reason else "")
            offers = [await open_lost_slot_offer(conn, b, label, principal) for b in affected]
        await audit.record(
            conn, principal, business_id, "resource", resource_id,
            "deactivated" if before["active"] and not row["active"] else "changed",
            audit.diff(ResourceOut(**before), ResourceOut(**row))
            | ({"affected_booking_ids": [str(b["id"]) for b in affected]} if affected else {}),
        )  # fmt: skip
    return dict(row), [b["id"] for b in affected], offers


async def _needs(
    conn: asyncpg.Connection, business_id: UUID, service_id: UUID, *, lock: bool
) -> ServiceNeedsOut:
    group = await conn.fetchrow(
        "SELECT resource_group FROM service WHERE business_id = $1 AND id = $2"
        + (" FOR UPDATE" if lock else ""),
        business_id,
        service_id,
    )
    if group is None:
        raise NotFound("No such service at this business.")
    members = await conn.fetch(
        "SELECT id FROM resource WHERE business_id = $1 AND group_name = $2 AND active "
        "ORDER BY name, id",
        business_id,
        group["resource_group"],
    )
    return ServiceNeedsOut(
        service_id=service_id,
        resource_group=group["resource_group"],
        resource_ids=[row["id"] for row in members],
    )


async def get_service_needs(
    principal: Principal, business_id: UUID, service_id: UUID
) -> ServiceNeedsOut:
    principal.require("availability:read", business_id)
    async with db.connection() as conn:
        return await _needs(conn, business_id, service_id, lock=False)


async def set_service_needs(
    principal: Principal,
    business_id: UUID,
    service_id: UUID,
    group: str | None,
    if_match: str | None = None,
) -> ServiceNeedsOut:
    """Say which group of resources a service needs one of (None: staff only)."""
    principal.require_manager(business_id)
    async with db.transaction() as conn:
        before = await _needs(conn, business_id, service_id, lock=True)
        audit.check_if_match(if_match, before)
        await conn.execute(
            "UPDATE service SET resource_group = $3 WHERE business_id = $1 AND id = $2",
            business_id,
            service_id,
            group.strip() if group else None,
        )
        after = await _needs(conn, business_id, service_id, lock=False)
        if after.resource_group != before.resource_group:
            await schedule_changed(conn, business_id, "service", aggregate_id=service_id)
        await audit.record(
            conn, principal, business_id, "service", service_id, "needs changed",
            audit.diff(before, after),
        )  # fmt: skip
    return after
