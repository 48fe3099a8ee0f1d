"""Helpers for guarantee tests: bookings on a chosen member of staff, links, the worker."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from booking import db
from booking.access.tokens import make_booking_token
from tests.notifications.fixtures import Pipeline
from tests.support import TEST_SECRET, World, at


def link(booking_id: str | UUID) -> str:
    return make_booking_token(TEST_SECRET, UUID(str(booking_id)))


async def book(
    world: World, days: int, hour: int, minute: int = 0, *, staff: int = 0, **extra: Any
) -> dict[str, Any]:
    client = world.client("front_desk")
    response = await client.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(days, hour, minute), staff=world.staff[staff], **extra),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def drain(pipeline: Pipeline, rounds: int = 6) -> None:
    """Run the real worker until every committed outbox row is relayed and handled
    (a handler's own outbox rows need another relay pass)."""
    for _ in range(rounds):
        await pipeline.run_worker()
        async with db.connection() as conn:
            waiting = await conn.fetchval("SELECT count(*) FROM outbox WHERE relayed_at IS NULL")
        if waiting == 0:
            await pipeline.run_worker()
            return
    raise AssertionError("the outbox did not drain")


async def fetch(sql: str, *args: Any) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        return [dict(row) for row in await conn.fetch(sql, *args)]


async def fetchval(sql: str, *args: Any) -> Any:
    async with db.connection() as conn:
        return await conn.fetchval(sql, *args)


async def execute(sql: str, *args: Any) -> None:
    async with db.connection() as conn:
        await conn.execute(sql, *args)


async def sms(template: str) -> list[dict[str, Any]]:
    return await fetch("SELECT * FROM message WHERE template = $1 ORDER BY created_at", template)


async def expire_offers_now(*offer_ids: Any) -> None:
    """Move offers' (and their holds') expiry into the past instead of sleeping."""
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE booking SET hold_expires_at = now() - interval '1 second' WHERE id IN "
            "(SELECT hold_id FROM reschedule_option WHERE offer_id = ANY($1::uuid[])) "
            "AND status = 'held'",
            [UUID(str(i)) for i in offer_ids],
        )
        await conn.execute(
            "UPDATE reschedule_offer SET expires_at = now() - interval '1 second' "
            "WHERE id = ANY($1::uuid[])",
            [UUID(str(i)) for i in offer_ids],
        )
