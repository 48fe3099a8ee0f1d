"""The front desk's view of risk: today's at-risk bookings, open offers, promises due soon."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from booking import db
from booking.access.principal import Principal
from booking.bookings.store import BOOKING_COLUMNS
from booking.errors import NotFound
from booking.guarantee.offer_rows import OFFER_COLUMNS, offer_options
from booking.guarantee.sql import STILL_LOST

DUE_SOON = timedelta(hours=2)


async def risk_view(
    principal: Principal,
    business_id: UUID,
    *,
    due_within: timedelta = DUE_SOON,
    day: date | None = None,
) -> dict[str, Any]:
    """At-risk bookings of ``day`` (today in the business's zone by default), every open
    offer, and open promises due within ``due_within``."""
    principal.require("bookings:read", business_id)
    async with db.connection() as conn:
        zone = await conn.fetchval("SELECT time_zone FROM business WHERE id = $1", business_id)
        if zone is None:
            raise NotFound("No such business.")
        tz = ZoneInfo(zone)
        today = day or datetime.now(tz).date()
        day_start = datetime.combine(today, time(0), tzinfo=tz)
        day_end = datetime.combine(today + timedelta(days=1), time(0), tzinfo=tz)
        at_risk = await conn.fetch(
            f"""
            SELECT {BOOKING_COLUMNS}, b.at_risk_since, b.at_risk_reason,
                   (SELECT o.id FROM reschedule_offer o WHERE o.booking_id = b.id
                      AND o.status = 'open') AS open_offer_id
            FROM booking b
            WHERE b.business_id = $1 AND b.at_risk_since IS NOT NULL AND {STILL_LOST}
              AND b.status IN ('pending', 'confirmed')
              AND b.starts_at >= $2 AND b.starts_at < $3
            ORDER BY b.starts_at, b.id
            """,
            business_id,
            day_start,
            day_end,
        )
        offer_rows = await conn.fetch(
            f"SELECT {OFFER_COLUMNS} FROM reschedule_offer o WHERE o.business_id = $1 "
            "AND o.status = 'open' ORDER BY o.expires_at, o.id",
            business_id,
        )
        offers = [
            dict(row) | {"options": await offer_options(conn, row["id"])} for row in offer_rows
        ]
        promises = await conn.fetch(
            """
            SELECT p.id, p.kind, p.booking_id, b.reference_code, p.made_at, p.nudge_at,
                   p.due_at, p.nudged_at
            FROM promise p LEFT JOIN booking b ON b.id = p.booking_id
            WHERE p.business_id = $1 AND p.status = 'open' AND p.due_at <= $2
            ORDER BY p.due_at, p.id
            """,
            business_id,
            datetime.now(UTC) + due_within,
        )
    return {
        "business_id": business_id,
        "day": today.isoformat(),
        "at_risk": [dict(row) for row in at_risk],
        "open_offers": offers,
        "promises_due_soon": [dict(row) for row in promises],
    }
