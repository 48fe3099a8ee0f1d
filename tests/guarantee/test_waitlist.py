"""The earlier-slot waitlist: a freed time cascades down the list, then frees the next."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from tests.guarantee.helpers import book, drain, expire_offers_now, fetch, link, sms
from tests.notifications.fixtures import Pipeline
from tests.sessions.support import book as seat_book
from tests.sessions.support import group_service, schedule, seats_in_sql
from tests.support import World, at


async def _join(world: World, booking: dict[str, Any], who: str = "link") -> None:
    client = (
        world.client(None, headers={"Authorization": f"Bearer {link(booking['id'])}"})
        if who == "link"
        else world.client(who)
    )
    response = await client.post(f"/v1/bookings/{booking['id']}/waitlist", json={})
    assert response.status_code == 201, response.text


async def _open_offer(booking_id: str) -> dict[str, Any]:
    [offer] = await fetch(
        "SELECT * FROM reschedule_offer WHERE booking_id = $1 AND status = 'open'",
        UUID(booking_id),
    )
    return offer


async def _accept(world: World, booking: dict[str, Any], offer_id: Any) -> dict[str, Any]:
    client = world.client(None, headers={"Authorization": f"Bearer {link(booking['id'])}"})
    response = await client.post(f"/v1/offers/{offer_id}/accept", json={"option": 1})
    assert response.status_code == 200, response.text
    moved: dict[str, Any] = response.json()["booking"]
    return moved


async def test_waitlist_cascade_across_three_customers_with_expiry_in_between(
    world: World, pipeline: Pipeline
) -> None:
    leaving = await book(world, 3, 10, phone="+393330000100")
    c1 = await book(world, 3, 14, phone="+393330000101")
    c2 = await book(world, 3, 15, phone="+393330000102")
    c3 = await book(world, 3, 16, phone="+393330000103")
    await _join(world, c1)
    await _join(world, c2, "front_desk")
    await _join(world, c3)
    await drain(pipeline)

    # 10:00 frees up: offered to the first on the list, held for them.
    cancel = await world.client("front_desk").post(f"/v1/bookings/{leaving['id']}/cancel")
    assert cancel.status_code == 200
    await drain(pipeline)
    first = await _open_offer(c1["id"])
    assert first["kind"] == "earlier_slot"
    [hold] = await fetch(
        "SELECT h.* FROM reschedule_option o JOIN booking h ON h.id = o.hold_id "
        "WHERE o.offer_id = $1",
        first["id"],
    )
    assert hold["status"] == "held"
    assert hold["starts_at"] == at(3, 10)
    assert abs((first["expires_at"] - first["created_at"]).total_seconds() - 15 * 60) < 5
    assert [m["to_phone"] for m in await sms("waitlist_offer")] == ["+393330000101"]

    # No answer within the TTL: the hold goes to the next customer.
    await expire_offers_now(first["id"])
    await drain(pipeline)
    second = await _open_offer(c2["id"])
    assert second["freed_slot_id"] == first["freed_slot_id"]
    [c1_row] = await fetch("SELECT starts_at FROM booking WHERE id = $1", UUID(c1["id"]))
    assert c1_row["starts_at"] == at(3, 14)  # unchanged, still waiting
    assert [m["to_phone"] for m in await sms("waitlist_offer")] == [
        "+393330000101",
        "+393330000102",
    ]

    # The second accepts: the same booking moves to 10:00 ...
    moved = await _accept(world, c2, second["id"])
    assert moved["id"] == c2["id"]
    assert moved["reference_code"] == c2["reference_code"]
    assert datetime.fromisoformat(moved["starts_at"]) == at(3, 10)
    # ... and the 15:00 it gave back cascades to the third (the first is at 14:00 already).
    await drain(pipeline)
    third = await _open_offer(c3["id"])
    [option] = await fetch("SELECT * FROM reschedule_option WHERE offer_id = $1", third["id"])
    assert option["starts_at"] == at(3, 15)
    moved3 = await _accept(world, c3, third["id"])
    assert datetime.fromisoformat(moved3["starts_at"]) == at(3, 15)
    await drain(pipeline)

    freed = await fetch("SELECT starts_at, status FROM freed_slot ORDER BY starts_at")
    assert [(f["starts_at"], f["status"]) for f in freed] == [
        (at(3, 10), "taken"),
        (at(3, 15), "taken"),
    ]  # 16:00 is not even recorded: nobody on the list would take it
    entries = await fetch("SELECT booking_id::text, status FROM waitlist_entry")
    assert {e["booking_id"]: e["status"] for e in entries} == {
        c1["id"]: "waiting",
        c2["id"]: "fulfilled",
        c3["id"]: "fulfilled",
    }
    assert await fetch("SELECT id FROM booking WHERE status = 'held'") == []
    assert len(await sms("waitlist_offer")) == 3


async def test_joining_the_waitlist_checks_the_window_and_the_caller(world: World) -> None:
    booking = await book(world, 3, 12)
    other = await book(world, 3, 13, phone="+393330000999")
    customer = world.client(None, headers={"Authorization": f"Bearer {link(booking['id'])}"})
    path = f"/v1/bookings/{booking['id']}/waitlist"

    later = await customer.post(path, json={"latest": at(3, 13).isoformat()})
    empty = await customer.post(
        path, json={"earliest": at(3, 11).isoformat(), "latest": at(3, 10).isoformat()}
    )
    foreign = await world.client(
        None, headers={"Authorization": f"Bearer {link(other['id'])}"}
    ).post(path, json={})
    partner = await world.client("partner_readonly").post(path, json={})
    ok = await customer.post(path, json={"earliest": at(3, 9).isoformat()})
    again = await customer.post(path, json={"earliest": at(3, 10).isoformat()})

    assert later.status_code == 422
    assert empty.status_code == 422
    assert foreign.status_code == 404
    assert partner.status_code in (403, 404)
    assert ok.status_code == 201
    assert again.status_code == 201
    assert again.json()["id"] == ok.json()["id"]  # one place per booking, window updated
    left = await customer.post(f"{path}/leave")
    assert left.json() == {"left": True}


async def test_a_seat_freed_in_an_earlier_class_is_held_for_a_waiting_attendee(
    world: World, pipeline: Pipeline
) -> None:
    service_id = await group_service(world, capacity=2)
    earlier = (await schedule(world, service_id, at(2, 10)))["id"]
    later = (await schedule(world, service_id, at(4, 10)))["id"]
    leaving, staying = [
        (await seat_book(world.client(), world, earlier, index)).json() for index in (1, 2)
    ]
    waiting = (await seat_book(world.client(), world, later, 3)).json()
    await _join(world, waiting)
    await drain(pipeline)

    cancel = await world.client("front_desk").post(f"/v1/bookings/{leaving['id']}/cancel")
    assert cancel.status_code == 200, cancel.text
    await drain(pipeline)
    offer = await _open_offer(waiting["id"])
    assert offer["kind"] == "earlier_slot"
    [hold] = await fetch(
        "SELECT h.* FROM reschedule_option o JOIN booking h ON h.id = o.hold_id "
        "WHERE o.offer_id = $1",
        offer["id"],
    )
    assert (hold["status"], str(hold["session_id"]), hold["seats"]) == ("held", earlier, 1)
    assert await seats_in_sql(earlier) == (2, 2)  # the one who stayed and the held seat
    full = await seat_book(world.client(), world, earlier, 4)
    assert full.status_code == 409, full.text  # the freed seat is kept for the waiting one

    moved = await _accept(world, waiting, offer["id"])
    assert (moved["id"], moved["reference_code"]) == (waiting["id"], waiting["reference_code"])
    assert moved["session_id"] == earlier
    assert moved["starts_at"] == staying["starts_at"]
    assert await seats_in_sql(earlier) == (2, 2)
    assert await seats_in_sql(later) == (0, 0)
