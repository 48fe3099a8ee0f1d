"""A lost slot reaches the partner that made the booking as an offer.created webhook."""

from __future__ import annotations

from booking import db
from tests.access.helpers import book
from tests.support import World, at
from tests.webhooks.test_webhooks import Receiver, _dispatch, _webhook_key, receiver

__all__ = ["receiver"]  # the fixture, re-exported for this module


async def test_time_off_over_a_partner_booking_sends_offer_created(
    world: World, receiver: Receiver
) -> None:
    key = await _webhook_key(world, world.partner_id)
    client = world.client(None, headers={"Authorization": f"Bearer {key}"})
    registered = await client.post(
        "/v1/webhook-endpoints",
        json={"url": f"{receiver.url}/a", "event_types": ["offer.created", "offer.expired"]},
    )
    assert registered.status_code == 201, registered.text
    receiver.secrets["a"] = registered.json()["secret"]
    mine = await book(world, "partner", 3, 10, staff=world.staff[0])
    sick = await world.client("manager").post(
        f"/v1/businesses/{world.business_id}/staff/{world.staff[0]}/time-off",
        json={
            "starts_at": at(3, 9).isoformat(),
            "ends_at": at(3, 13).isoformat(),
            "kind": "sick_leave",
        },
    )
    assert sick.status_code in (200, 201), sick.text
    deliveries = await _dispatch(mine["id"])
    async with db.connection() as conn:
        types = [
            row["event_type"]
            for row in await conn.fetch(
                "SELECT event_type FROM webhook_delivery ORDER BY created_at"
            )
        ]
    assert types == ["offer.created"]
    assert len(deliveries) == 1
