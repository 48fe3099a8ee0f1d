"""Who did what is in the booking's history: partner, staff override with reason, link."""

from __future__ import annotations

import httpx

from booking import db
from tests.access.helpers import book, booking_link
from tests.support import World, at


async def test_history_records_principal_channel_and_override_reason(world: World) -> None:
    made = await book(world, "partner", 3, 10)
    booking_id = made["id"]
    partner_key_id = next(
        item["id"]
        for item in (await world.client("admin").get("/v1/api-keys")).json()
        if item["kind"] == "partner"
        and "bookings:write" in item["scopes"]
        and item["partner_id"] == str(world.partner_id)
    )
    async with db.transaction() as conn:
        await conn.execute("UPDATE business SET max_changes = 0 WHERE id = $1", world.business_id)

    refused = await world.client("partner").patch(
        f"/v1/bookings/{booking_id}", json={"starts_at": at(3, 14).isoformat()}
    )
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/change-policy"
    overridden = await world.client("manager").patch(
        f"/v1/bookings/{booking_id}",
        json={
            "starts_at": at(3, 14).isoformat(),
            "override_reason": "stylist ill, agreed by phone",
        },
    )
    assert overridden.status_code == 200, overridden.text
    link = booking_link(booking_id)
    async with httpx.AsyncClient(
        base_url=world.base_url, headers={"Authorization": f"Bearer {link}"}
    ) as customer:
        cancelled = await customer.post(
            f"/v1/bookings/{booking_id}/cancel", json={"reason": "moved"}
        )
        assert cancelled.status_code == 200, cancelled.text
        history = (await customer.get(f"/v1/bookings/{booking_id}/history")).json()

    events = {event["event"]: event for event in history}
    created = events["booking.created"]
    assert (created["actor_type"], created["actor_id"], created["channel"]) == (
        "partner", partner_key_id, "partner"
    )  # fmt: skip
    changed = events["booking.changed"]
    assert changed["actor_type"] == "staff"
    assert changed["channel"] == "front_desk"
    assert changed["policy_override"] is True
    assert changed["reason"] == "stylist ill, agreed by phone"
    cancel = events["booking.cancelled"]
    assert cancel["actor_type"] == "customer"
    assert cancel["channel"] == "web"
    assert cancel["actor_id"] == booking_id.replace("-", "")
    assert cancel["reason"] == "moved"
    assert [e["event"] for e in history if e["policy_override"]] == ["booking.changed"]
