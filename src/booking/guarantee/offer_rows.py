"""Reschedule offers as rows: the held options and the offer row with its event.

Shared by :mod:`booking.guarantee.offers` (lost slots, acceptance, expiry) and
:mod:`booking.guarantee.waitlist` (earlier slots), which import this module and not
each other the other way round (offers -> waitlist -> offer_rows).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from booking.access.principal import Principal
from booking.availability.context import ServiceContext
from booking.bookings.holds import insert_hold
from booking.guarantee import events

GUARANTEE = Principal(kind="system", id="guarantee")

OFFER_COLUMNS = """
    o.id, o.business_id, o.booking_id, o.kind, o.status, o.reason, o.expires_at,
    o.waitlist_entry_id, o.freed_slot_id, o.accepted_position, o.decided_by, o.created_at,
    o.decided_at
"""


async def hold_options(
    conn: asyncpg.Connection,
    context: ServiceContext,
    booking: asyncpg.Record | dict[str, Any],
    expires_at: datetime,
    candidates: list[tuple[datetime, UUID]],
    wanted: int,
) -> list[dict[str, Any]]:
    held: list[dict[str, Any]] = []
    for starts_at, staff_id in candidates:
        if len(held) >= wanted:
            break
        blocked = (
            starts_at - context.shape.buffer_before,
            starts_at + context.shape.duration + context.shape.buffer_after,
        )
        if any(
            h["staff_id"] == staff_id
            and h["blocked_from"] < blocked[1]
            and blocked[0] < h["blocked_until"]
            for h in held
        ):
            continue  # overlaps an option already held: the database would refuse it
        hold = await insert_hold(
            conn,
            context,
            [staff_id],
            starts_at,
            expires_at=expires_at,
            principal=GUARANTEE,
            notes=f"held for booking {booking['reference_code']}",
        )
        if hold is not None:
            held.append(hold)
    return held


async def insert_offer(
    conn: asyncpg.Connection,
    booking: asyncpg.Record | dict[str, Any],
    *,
    kind: str,
    reason: str,
    expires_at: datetime,
    holds: list[dict[str, Any]],
    waitlist_entry_id: UUID | None = None,
    freed_slot_id: UUID | None = None,
) -> dict[str, Any]:
    status = "open" if holds else "expired"
    offer = await conn.fetchrow(
        f"""
        INSERT INTO reschedule_offer AS o (business_id, booking_id, kind, status, reason,
            expires_at, waitlist_entry_id, freed_slot_id, decided_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $4 = 'open' THEN NULL ELSE now() END)
        RETURNING {OFFER_COLUMNS}
        """,
        booking["business_id"],
        booking["id"],
        kind,
        status,
        reason,
        expires_at,
        waitlist_entry_id,
        freed_slot_id,
    )
    assert offer is not None
    options = []
    for position, hold in enumerate(holds, start=1):
        await conn.execute(
            "INSERT INTO reschedule_option (business_id, offer_id, position, hold_id, staff_id, "
            "resource_id, starts_at) VALUES ($6, $1, $2, $3, $4, $7, $5)",
            offer["id"],
            position,
            hold["id"],
            hold["staff_id"],
            hold["starts_at"],
            booking["business_id"],
            hold.get("resource_id"),
        )
        options.append(
            {
                "position": position,
                "hold_id": hold["id"],
                "staff_id": hold["staff_id"],
                "resource_id": hold.get("resource_id"),
                "starts_at": hold["starts_at"],
                "ends_at": hold["ends_at"],
                "hold_status": "held",
            }
        )
    result = dict(offer) | {"options": await offer_options(conn, offer["id"])}
    payload = {
        "offer_id": str(offer["id"]),
        "booking_id": str(booking["id"]),
        "kind": kind,
        "reason": reason,
        "expires_at": expires_at.isoformat(),
        "options": [
            {
                "position": o["position"],
                "starts_at": o["starts_at"].isoformat(),
                "staff_id": str(o["staff_id"]),
                "resource_id": str(o["resource_id"]) if o["resource_id"] else None,
            }
            for o in options
        ],
    }
    topic = events.OFFER_CREATED if holds else events.OFFER_EXPIRED
    await events.emit(conn, booking["business_id"], topic, booking["id"], payload)
    return result


async def offer_options(conn: asyncpg.Connection, offer_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """
        SELECT o.position, o.hold_id, o.staff_id, o.resource_id, o.starts_at, h.ends_at,
               h.status AS hold_status, st.name AS staff_name, r.name AS resource_name
        FROM reschedule_option o JOIN booking h ON h.id = o.hold_id
        JOIN staff st ON st.id = o.staff_id
        LEFT JOIN resource r ON r.business_id = o.business_id AND r.id = o.resource_id
        WHERE o.offer_id = $1 ORDER BY o.position
        """,
        offer_id,
    )
    return [dict(row) for row in rows]
