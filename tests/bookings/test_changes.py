"""Ticket changes: one call, one transaction, same id and reference, history kept."""

from __future__ import annotations

from typing import Any

from booking import db
from tests.support import World, at


async def _book(world: World, who: str = "front_desk", **kwargs: Any) -> dict[str, Any]:
    starts = kwargs.pop("starts", at(3, 10))
    response = await world.client(who).post(
        f"/v1/businesses/{world.business_id}/bookings", json=world.booking_body(starts, **kwargs)
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_move_to_a_free_time_keeps_id_and_reference(world: World) -> None:
    booking = await _book(world, staff=world.staff[0])
    response = await world.client("front_desk").patch(
        f"/v1/bookings/{booking['id']}",
        json={"starts_at": at(3, 14).isoformat()},
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    moved = response.json()
    assert moved["id"] == booking["id"]
    assert moved["reference_code"] == booking["reference_code"]
    assert moved["staff_id"] == booking["staff_id"]  # same person when free
    assert moved["version"] == 2
    assert moved["change_count"] == 1
    assert response.headers["etag"] == '"2"'
    # the old time is free again, at once
    again = await _book(world, staff=world.staff[0], phone="+393330000001")
    assert again["starts_at"] == booking["starts_at"]
    history = (await world.client("front_desk").get(f"/v1/bookings/{booking['id']}/history")).json()
    change = history[-1]
    assert change["event"] == "booking.changed"
    assert set(change["changes"]) == {"starts_at", "ends_at"}
    assert change["actor_type"] == "staff"
    async with db.connection() as conn:
        topics = [r["topic"] for r in await conn.fetch("SELECT topic FROM outbox ORDER BY id")]
    assert topics == ["booking.created", "booking.changed", "booking.created"]


async def test_change_to_a_taken_slot_leaves_the_booking_intact(world: World) -> None:
    mine = await _book(world, staff=world.staff[0], starts=at(3, 10))
    await _book(world, staff=world.staff[0], starts=at(3, 12), phone="+393330000002")
    response = await world.client("front_desk").patch(
        f"/v1/bookings/{mine['id']}",
        json={"starts_at": at(3, 12).isoformat(), "staff_id": str(world.staff[0])},
    )
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == "/problems/slot-taken"
    assert problem["alternatives"]
    assert all(
        a["starts_at"] != at(3, 12).isoformat() or a["staff_id"] != str(world.staff[0])
        for a in problem["alternatives"]
    )
    unchanged = (await world.client("front_desk").get(f"/v1/bookings/{mine['id']}")).json()
    assert unchanged["starts_at"] == mine["starts_at"]
    assert unchanged["version"] == 1
    assert unchanged["status"] == "confirmed"


async def test_swap_staff_and_change_service(world: World) -> None:
    booking = await _book(world, staff=world.staff[0])
    client = world.client("front_desk")
    swapped = await client.patch(
        f"/v1/bookings/{booking['id']}", json={"staff_id": str(world.staff[1])}
    )
    assert swapped.status_code == 200
    assert swapped.json()["staff_id"] == str(world.staff[1])
    longer = await client.patch(
        f"/v1/bookings/{booking['id']}", json={"service_id": str(world.colour)}
    )
    assert longer.status_code == 200, longer.text
    body = longer.json()
    assert body["service_id"] == str(world.colour)
    assert body["version"] == 3
    not_eligible = await client.patch(
        f"/v1/bookings/{booking['id']}", json={"staff_id": str(world.staff[2])}
    )
    assert not_eligible.status_code == 422  # Sara does not do colour


async def test_lost_update_between_two_desks_is_prevented(world: World) -> None:
    booking = await _book(world)
    desk_a = world.client("front_desk")
    desk_b = world.client("manager")
    first = await desk_a.patch(
        f"/v1/bookings/{booking['id']}",
        json={"starts_at": at(3, 11).isoformat()},
        headers={"If-Match": '"1"'},
    )
    assert first.status_code == 200
    second = await desk_b.patch(
        f"/v1/bookings/{booking['id']}",
        json={"starts_at": at(3, 15).isoformat()},
        headers={"If-Match": '"1"'},
    )
    assert second.status_code == 412
    assert second.json()["current_version"] == 2
    final = (await desk_a.get(f"/v1/bookings/{booking['id']}")).json()
    assert final["starts_at"] == first.json()["starts_at"]


async def test_policy_binds_partners_and_staff_override_is_recorded(world: World) -> None:
    booking = await _book(world, who="partner")
    async with db.connection() as conn:  # the cut-off is 2 h; make it 4 days
        await conn.execute(
            "UPDATE business SET change_cutoff_minutes = 5760 WHERE id = $1", world.business_id
        )
    body = {"starts_at": at(3, 15).isoformat()}
    refused = await world.client("partner").patch(f"/v1/bookings/{booking['id']}", json=body)
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/change-policy"
    desk = world.client("front_desk")
    needs_reason = await desk.patch(f"/v1/bookings/{booking['id']}", json=body)
    assert needs_reason.status_code == 409
    overridden = await desk.patch(
        f"/v1/bookings/{booking['id']}",
        json={**body, "override_reason": "customer at the counter, manager agreed"},
    )
    assert overridden.status_code == 200
    history = (await desk.get(f"/v1/bookings/{booking['id']}/history")).json()
    assert history[-1]["policy_override"] is True
    assert history[-1]["reason"] == "customer at the counter, manager agreed"


async def test_maximum_number_of_changes(world: World) -> None:
    booking = await _book(world, who="partner", starts=at(3, 9))
    client = world.client("partner")
    for hour in (10, 11, 12):
        moved = await client.patch(
            f"/v1/bookings/{booking['id']}", json={"starts_at": at(3, hour).isoformat()}
        )
        assert moved.status_code == 200, moved.text
    fourth = await client.patch(
        f"/v1/bookings/{booking['id']}", json={"starts_at": at(3, 13).isoformat()}
    )
    assert fourth.status_code == 409
    assert "at most 3" in fourth.json()["detail"]


async def test_customer_token_can_change_its_booking(world: World) -> None:
    booking = await _book(world)
    customer = world.client(None, headers={"Authorization": f"Bearer {booking['manage_token']}"})
    moved = await customer.patch(
        f"/v1/bookings/{booking['id']}", json={"starts_at": at(3, 16).isoformat()}
    )
    assert moved.status_code == 200
    history = (await customer.get(f"/v1/bookings/{booking['id']}/history")).json()
    assert history[-1]["actor_type"] == "customer"


async def test_cancelled_booking_cannot_be_changed(world: World) -> None:
    booking = await _book(world)
    client = world.client("front_desk")
    await client.post(f"/v1/bookings/{booking['id']}/cancel")
    response = await client.patch(
        f"/v1/bookings/{booking['id']}", json={"starts_at": at(3, 16).isoformat()}
    )
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/invalid-transition"


async def test_a_change_to_what_the_booking_already_is_writes_nothing(world: World) -> None:
    """A double click at the counter, or a retry without a key: the second identical move
    answers the booking as it is - no new version, history event or SMS - and does not
    count against the business's change limit (here: 3 for partners)."""
    booking = await _book(world, who="partner", staff=world.staff[0])
    client = world.client("partner")
    path = f"/v1/bookings/{booking['id']}"
    later = {"starts_at": at(3, 14).isoformat()}
    first = await client.patch(path, json=later)
    assert first.status_code == 200, first.text
    for same in (later, later | {"staff_id": str(world.staff[0])}):
        again = await client.patch(path, json=same, headers={"If-Match": '"2"'})
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        assert again.headers["etag"] == '"2"'
    async with db.connection() as conn:
        topics = [r["topic"] for r in await conn.fetch("SELECT topic FROM outbox ORDER BY id")]
        events = await conn.fetchval("SELECT count(*) FROM booking_history")
    assert topics == ["booking.created", "booking.changed"]
    assert events == 2
    for hour in (15, 16):  # changes 2 and 3 of the limit of 3
        assert (await client.patch(path, json={"starts_at": at(3, hour).isoformat()})).is_success
    stale = await client.patch(path, json=later, headers={"If-Match": '"2"'})
    assert stale.status_code == 412  # the precondition is still checked first
