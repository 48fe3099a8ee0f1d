"""Holds: conflict-free slot locking while the customer checks out."""

from __future__ import annotations

from typing import Any

from booking import db
from booking.bookings.holds import sweep_expired_holds
from tests.support import World, at


async def _hold(world: World, who: str = "app", **body: Any) -> Any:
    payload = {"service_id": str(world.cut), "starts_at": at(2, 10).isoformat()}
    payload.update({k: str(v) for k, v in body.items()})
    return await world.client(who).post(f"/v1/businesses/{world.business_id}/holds", json=payload)


async def _expire(hold_id: str) -> None:
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE booking SET hold_expires_at = now() - interval '1 second' WHERE id = $1",
            hold_id,
        )


CUSTOMER = {"name": "Anna Ferri", "phone": "+393331234567", "locale": "it"}


async def test_hold_then_confirm_keeps_the_same_id(world: World) -> None:
    response = await _hold(world, staff_id=world.staff[1])
    assert response.status_code == 201, response.text
    body = response.json()
    hold = body["hold"]
    assert hold["status"] == "held"
    assert body["hold_token"]
    assert body["expires_at"]
    confirm = await world.client("app").post(
        f"/v1/holds/{hold['id']}/confirm",
        json={"hold_token": body["hold_token"], "customer": CUSTOMER},
    )
    assert confirm.status_code == 201, confirm.text
    booked = confirm.json()
    assert booked["id"] == hold["id"]
    assert booked["reference_code"] == hold["reference_code"]
    assert booked["status"] == "confirmed"
    assert booked["staff_id"] == str(world.staff[1])
    twice = await world.client("app").post(
        f"/v1/holds/{hold['id']}/confirm",
        json={"hold_token": body["hold_token"], "customer": CUSTOMER},
    )
    assert twice.status_code == 409


async def test_wrong_token_is_refused_and_changes_nothing(world: World) -> None:
    body = (await _hold(world)).json()
    response = await world.client("app").post(
        f"/v1/holds/{body['hold']['id']}/confirm",
        json={"hold_token": "not-the-token-at-all", "customer": CUSTOMER},
    )
    assert response.status_code == 403
    assert response.json()["type"] == "/problems/hold-token-invalid"
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT status FROM booking") == "held"
        assert await conn.fetchval("SELECT count(*) FROM customer") == 0


async def test_holds_block_the_time_for_everyone(world: World) -> None:
    assert (await _hold(world, staff_id=world.staff[0])).status_code == 201
    second = await _hold(world, who="partner", staff_id=world.staff[0])
    assert second.status_code == 409
    problem = second.json()
    assert problem["type"] == "/problems/slot-taken"
    assert problem["alternatives"]
    booking = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(2, 10), staff=world.staff[0]),
    )
    assert booking.status_code == 409


async def test_any_staff_hold_takes_the_next_free_person(world: World) -> None:
    taken = set()
    for _ in range(3):
        response = await _hold(world)
        assert response.status_code == 201
        taken.add(response.json()["hold"]["staff_id"])
    assert taken == {str(s) for s in world.staff}
    fourth = await _hold(world)
    assert fourth.status_code == 409


async def test_expired_hold_no_longer_blocks_and_cannot_be_confirmed(world: World) -> None:
    first = (await _hold(world, staff_id=world.staff[0])).json()
    await _expire(first["hold"]["id"])
    # Lazy release: the next hold on the same time succeeds without the sweeper.
    second = await _hold(world, who="partner", staff_id=world.staff[0])
    assert second.status_code == 201, second.text
    late = await world.client("app").post(
        f"/v1/holds/{first['hold']['id']}/confirm",
        json={"hold_token": first["hold_token"], "customer": CUSTOMER},
    )
    assert late.status_code in (409, 410)
    async with db.connection() as conn:
        status = await conn.fetchval(
            "SELECT status FROM booking WHERE id = $1", first["hold"]["id"]
        )
        events = await conn.fetch(
            "SELECT event FROM booking_history WHERE booking_id = $1 ORDER BY id",
            first["hold"]["id"],
        )
    assert status == "expired"
    assert [e["event"] for e in events] == ["hold.created", "hold.expired"]


async def test_expired_hold_confirm_answers_410(world: World) -> None:
    body = (await _hold(world)).json()
    await _expire(body["hold"]["id"])
    late = await world.client("app").post(
        f"/v1/holds/{body['hold']['id']}/confirm",
        json={"hold_token": body["hold_token"], "customer": CUSTOMER},
    )
    assert late.status_code == 410
    assert late.json()["type"] == "/problems/hold-expired"


async def test_sweeper_expires_holds_and_frees_availability(world: World) -> None:
    body = (await _hold(world, staff_id=world.staff[2])).json()
    await _expire(body["hold"]["id"])
    assert await sweep_expired_holds() == 1
    assert await sweep_expired_holds() == 0  # idempotent
    availability = await world.client("app").get(
        f"/v1/businesses/{world.business_id}/availability",
        params={
            "service_id": str(world.cut),
            "from": at(2, 10).isoformat(),
            "to": at(2, 10, 1).isoformat(),
            "staff_id": str(world.staff[2]),
        },
    )
    assert [s["staff_ids"] for s in availability.json()["slots"]] == [[str(world.staff[2])]]


async def test_live_hold_is_hidden_from_availability(world: World) -> None:
    await _hold(world, staff_id=world.staff[2])
    availability = await world.client("app").get(
        f"/v1/businesses/{world.business_id}/availability",
        params={
            "service_id": str(world.cut),
            "from": at(2, 10).isoformat(),
            "to": at(2, 10, 1).isoformat(),
        },
    )
    slot = availability.json()["slots"][0]
    assert str(world.staff[2]) not in slot["staff_ids"]
    assert len(slot["staff_ids"]) == 2


async def test_release_gives_the_time_back(world: World) -> None:
    body = (await _hold(world, staff_id=world.staff[0])).json()
    released = await world.client("app").post(
        f"/v1/holds/{body['hold']['id']}/release", json={"hold_token": body["hold_token"]}
    )
    assert released.status_code == 200
    assert released.json()["status"] == "cancelled"
    assert (await _hold(world, staff_id=world.staff[0])).status_code == 201
