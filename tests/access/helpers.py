"""Helpers for access tests: bookings made by given principals, booking links."""

from __future__ import annotations

from typing import Any

from booking.access.tokens import make_booking_token
from tests.support import TEST_SECRET, World, at


async def book(world: World, who: str, days: int, hour: int, **extra: Any) -> dict[str, Any]:
    client = world.client(who)
    response = await client.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(days, hour), **extra),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def booking_link(booking_id: str) -> str:
    from uuid import UUID

    return make_booking_token(TEST_SECRET, UUID(booking_id))
