"""What the desk reads: the business, bookings found by reference, phone or name."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from booking import db


@dataclass(frozen=True, slots=True)
class Business:
    id: UUID
    name: str
    locale: str
    time_zone: str


async def load_business(business_id: UUID) -> Business:
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT id, name, locale, time_zone FROM business WHERE id = $1", business_id
        )
    assert row is not None  # a live session's key names an existing business
    return Business(row["id"], row["name"], row["locale"], row["time_zone"])
