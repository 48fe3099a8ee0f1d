"""Driving one booking through its journey the way the system does it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from booking import db
from booking.access.service import create_api_key
from tests.notifications.fixtures import Pipeline, messages
from tests.support import World
from tests.webhooks.test_webhooks import Receiver


async def subscribe_partner(world: World, receiver: Receiver, events: list[str]) -> None:
    issued = await create_api_key(
        kind="partner",
        partner_id=world.partner_id,
        business_ids=[world.business_id],
        scopes=["webhooks:manage", "bookings:read"],
    )
    client = world.client(None, headers={"Authorization": f"Bearer {issued.key}"})
    answer = await client.post(
        "/v1/webhook-endpoints", json={"url": f"{receiver.url}/p", "event_types": events}
    )
    assert answer.status_code == 201, answer.text
    receiver.secrets["p"] = answer.json()["secret"]


async def deliver_all(pipeline: Pipeline, booking_id: str) -> None:
    """Twilio reports every sent SMS of the booking as delivered (signed callbacks)."""
    for message in await messages(UUID(booking_id)):
        if message["status"] == "sent":
            status = await pipeline.fake.send_status_callback(message["provider_sid"], "delivered")
            assert status == 204


async def send_reminder_now(booking_id: str) -> None:
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE reminder SET due_at = now() - interval '1 minute' "
            "WHERE booking_id = $1 AND offset_minutes = 1440",
            UUID(booking_id),
        )


async def journey(world: World, booking_id: str, who: str = "front_desk") -> dict[str, Any]:
    answer = await world.client(who).get(f"/v1/bookings/{booking_id}/journey")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def touchpoints(body: dict[str, Any]) -> list[str]:
    return [entry["touchpoint"] for entry in body["entries"]]
