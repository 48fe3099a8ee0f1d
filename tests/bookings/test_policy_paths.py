"""Every path that moves or cancels a booking asks the one policy (bookings/policy.py):
the API cancel, the self-service page and offer acceptance, with overrides and
exemptions on the record. The decisions themselves are unit-tested in tests/unit."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx

from tests.guarantee.helpers import book, execute, fetch, link
from tests.support import World, at

FOUR_DAYS = 4 * 24 * 60  # a cut-off that the bookings below (3 days ahead) are inside


async def _cut_off(world: World, minutes: int) -> None:
    await execute(
        "UPDATE business SET change_cutoff_minutes = $2 WHERE id = $1", world.business_id, minutes
    )


async def _history(booking_id: str) -> list[dict[str, Any]]:
    return await fetch(
        "SELECT event, actor_type, reason, policy_override FROM booking_history "
        "WHERE booking_id = $1 ORDER BY id",
        UUID(booking_id),
    )


async def test_a_customer_cannot_cancel_after_the_cutoff(world: World) -> None:
    booking = await book(world, 3, 10)
    await _cut_off(world, FOUR_DAYS)
    customer = world.client(None, headers={"Authorization": f"Bearer {link(booking['id'])}"})

    refused = await customer.post(f"/v1/bookings/{booking['id']}/cancel", json={})

    assert refused.status_code == 409
    problem = refused.json()
    assert problem["type"] == "/problems/change-policy"
    assert problem["detail"] == (
        "Cancellations close 96 h before the appointment; please contact the business."
    )
    assert problem["breaches"] == ["cancellations close 96 h before the appointment"]
    current = (await world.client("front_desk").get(f"/v1/bookings/{booking['id']}")).json()
    assert current["status"] == "confirmed"


async def test_staff_cancelling_after_the_cutoff_is_recorded_as_an_override(
    world: World,
) -> None:
    before = await book(world, 3, 10)
    late = await book(world, 3, 11, phone="+393330001111")
    desk = world.client("front_desk")
    on_time = await desk.post(f"/v1/bookings/{before['id']}/cancel", json={"reason": "ill"})
    assert on_time.status_code == 200, on_time.text
    await _cut_off(world, FOUR_DAYS)

    cancelled = await desk.post(f"/v1/bookings/{late['id']}/cancel", json={"reason": "ill"})

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    *_, on_time_event = await _history(before["id"])
    assert on_time_event == {
        "event": "booking.cancelled",
        "actor_type": "staff",
        "reason": "ill",
        "policy_override": False,
    }
    *_, late_event = await _history(late["id"])
    assert late_event == {
        "event": "booking.cancelled",
        "actor_type": "staff",
        "reason": "ill",
        "policy_override": True,
    }


async def _page(world: World, booking_id: str) -> str:
    async with httpx.AsyncClient(base_url=world.base_url) as client:
        response = await client.get(f"/b/{link(booking_id)}")
    assert response.status_code == 200
    return response.text


async def test_the_page_offers_other_times_only_when_the_policy_allows_a_change(
    world: World,
) -> None:
    booking = await book(world, 3, 10)
    open_page = await _page(world, booking["id"])
    assert 'id="change-closed"' not in open_page
    assert 'name="starts_at"' in open_page  # the free times, one form each

    await execute("UPDATE booking SET change_count = 3 WHERE id = $1", UUID(booking["id"]))
    closed_page = await _page(world, booking["id"])

    assert 'id="change-closed"' in closed_page
    assert 'name="starts_at"' not in closed_page
    assert 'id="cancel"' in closed_page  # cancelling is still the customer's choice


async def test_accepting_an_offer_inside_the_cutoff_records_the_exemption(world: World) -> None:
    booking = await book(world, 3, 10)
    manager = world.client("manager")
    lost = await manager.post(
        f"/v1/businesses/{world.business_id}/staff/{world.staff[0]}/time-off",
        json={"starts_at": at(3, 9).isoformat(), "ends_at": at(3, 18).isoformat()},
    )
    assert lost.status_code == 201, lost.text
    [offer] = lost.json()["offers"]
    await _cut_off(world, FOUR_DAYS)  # a customer's own change would now be refused
    customer = world.client(None, headers={"Authorization": f"Bearer {link(booking['id'])}"})
    own_change = await customer.patch(
        f"/v1/bookings/{booking['id']}", json={"starts_at": at(3, 15).isoformat()}
    )
    assert own_change.status_code == 409
    assert own_change.json()["type"] == "/problems/change-policy"

    accepted = await customer.post(f"/v1/offers/{offer['id']}/accept", json={"option": 1})

    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["booking"]["starts_at"] == offer["options"][0]["starts_at"]
    *_, change = await _history(booking["id"])
    assert change == {
        "event": "booking.changed",
        "actor_type": "customer",
        "reason": "reschedule offer accepted: option 1; "
        "policy exemption: the business could not keep the booked time",
        "policy_override": True,
    }
