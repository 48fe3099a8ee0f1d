"""A group service ("Yoga", 60 min, 12 seats, taught by staff 0) and its sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import httpx

from booking import db
from tests.support import World

CAPACITY = 12


async def group_service(world: World, *, capacity: int = CAPACITY) -> UUID:
    async with db.transaction() as conn:
        service_id: UUID = await conn.fetchval(
            "INSERT INTO service (business_id, name, duration_minutes, buffer_before_minutes, "
            "buffer_after_minutes, requires_confirmation) VALUES ($1, 'Yoga', 60, 0, 15, false) "
            "RETURNING id",
            world.business_id,
        )
        await conn.execute(
            "INSERT INTO service_staff (business_id, service_id, staff_id) VALUES ($1, $2, $3)",
            world.business_id,
            service_id,
            world.staff[0],
        )
    response = await world.client("manager").put(
        f"/v1/businesses/{world.business_id}/services/{service_id}/group",
        json={"capacity": capacity},
    )
    assert response.status_code == 200, response.text
    return service_id


async def schedule(
    world: World, service_id: UUID, starts_at: datetime, **extra: Any
) -> dict[str, Any]:
    response = await world.client().post(
        f"/v1/businesses/{world.business_id}/sessions",
        json={
            "service_id": str(service_id),
            "starts_at": starts_at.isoformat(),
            "staff_id": str(world.staff[0]),
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


def seat_body(index: int, seats: int = 1) -> dict[str, Any]:
    return {
        "seats": seats,
        "customer": {"name": f"Guest {index}", "phone": f"+39333{index:07d}", "locale": "it"},
    }


async def book(
    client: httpx.AsyncClient, world: World, session_id: str, index: int, seats: int = 1
) -> httpx.Response:
    return await client.post(
        f"/v1/businesses/{world.business_id}/sessions/{session_id}/bookings",
        json=seat_body(index, seats),
    )


async def seats_in_sql(session_id: str) -> tuple[int, int]:
    """(seats held by active bookings counted from the rows, the session's counter)."""
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT (SELECT coalesce(sum(seats), 0) FROM booking WHERE session_id = s.id "
            "AND booking_holds_time(status))::int AS counted, s.seats_taken "
            "FROM session s WHERE s.id = $1",
            UUID(session_id),
        )
    assert row is not None
    return row["counted"], row["seats_taken"]
