"""Driving one booking through its journey the way the system does it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx

from booking import db
from booking.access.service import create_api_key
from booking.notifications.signature import sign_twilio_request
from tests.bookings.test_bookings_api import move_to_later_today
from tests.fakes.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
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


async def complete(world: World, booking_id: str, who: str = "front_desk") -> None:
    """Check the customer in and complete the visit (moved to later today first)."""
    await move_to_later_today(booking_id)
    desk = world.client(who)
    for action in ("check-in", "complete"):
        done = await desk.post(f"/v1/bookings/{booking_id}/{action}")
        assert done.status_code == 200, done.text


async def ask_at_once(world: World, on_duty: str | None = "+393330009999") -> None:
    """The business asks right after the visit and has an on-duty phone."""
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE business SET feedback_delay_minutes = 0, on_duty_phone = $2 WHERE id = $1",
            world.business_id,
            on_duty,
        )


async def inbound(api: str, body: str, sid: str, phone: str) -> httpx.Response:
    form = {
        "AccountSid": DEFAULT_ACCOUNT_SID,
        "MessageSid": sid,
        "SmsSid": sid,
        "From": phone,
        "To": "+15005550006",
        "Body": body,
        "NumMedia": "0",
    }
    path = "/v1/twilio/inbound"
    signature = sign_twilio_request(DEFAULT_AUTH_TOKEN, api + path, form)
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        answer = await client.post(path, data=form, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200, answer.text
    return answer


async def rows(sql: str, *args: Any) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        return [dict(row) for row in await conn.fetch(sql, *args)]
