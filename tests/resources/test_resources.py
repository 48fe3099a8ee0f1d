"""Rooms, chairs and devices: managed like staff, needed by services, booked together
with a member of staff under the one constraint, with the lost-slot recovery."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import httpx

from booking import db
from tests.support import World, add_cabins, at

OVERLAPPING_ACTIVE = """
    SELECT count(*) FROM allocation a JOIN allocation b
      ON a.business_id = b.business_id AND a.resource_id = b.resource_id AND a.id < b.id
     AND a.during && b.during
    WHERE a.active AND b.active
"""


def _book(world: World, starts: Any, index: int, **extra: Any) -> dict[str, Any]:
    return world.booking_body(starts, phone=f"+39333{index:07d}", name=f"Client {index}", **extra)


async def test_resources_are_created_renamed_listed_and_refused_when_bad(world: World) -> None:
    manager = world.client("manager")
    base = f"/v1/businesses/{world.business_id}/resources"
    made = await manager.post(base, json={"kind": "chair", "name": "Chair 2", "group": "chair-2"})
    assert made.status_code == 201, made.text
    chair = made.json()
    assert (chair["kind"], chair["name"], chair["group"], chair["active"]) == (
        "chair",
        "Chair 2",
        "chair-2",
        True,
    )
    renamed = await manager.patch(f"{base}/{chair['id']}", json={"name": "Chair two"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["resource"]["name"] == "Chair two"
    listed = await manager.get(base, params={"group": "chair-2"})
    assert [r["name"] for r in listed.json()] == ["Chair two"]
    bad = await manager.post(base, json={"kind": "staff", "name": "Sneaky"})
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    # Staff are resources internally but never managed here.
    staff = await manager.get(f"{base}/{world.staff[0]}")
    assert staff.status_code == 404
    desk = await world.client("front_desk").post(base, json={"kind": "room", "name": "X"})
    assert desk.status_code == 403
    other = await world.client("other_staff").get(base)
    assert other.status_code in (403, 404)


async def test_availability_offers_only_times_where_staff_and_a_cabin_are_free(
    world: World,
) -> None:
    (cabin,) = await add_cabins(world, 1)
    desk = world.client("front_desk")
    first = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=_book(world, at(4, 10), 1, staff=world.staff[0]),
    )
    assert first.status_code == 201, first.text
    assert first.json()["resource_id"] == str(cabin)
    found = await desk.get(
        f"/v1/businesses/{world.business_id}/availability",
        params={
            "service_id": str(world.cut),
            "from": at(4, 9).isoformat(),
            "to": at(4, 12).isoformat(),
        },
    )
    assert found.status_code == 200, found.text
    slots = {s["starts_at"][11:16]: s for s in found.json()["slots"]}
    # Staff 1 and 2 are free at 10:00 but the only cabin is not (30 min + 10 min buffer).
    assert "10:00" not in slots
    assert "10:30" not in slots
    assert slots["10:45"]["resource_ids"] == [str(cabin)]
    assert slots["09:00"]["staff_ids"]  # every staff member free then, with the cabin
    # The database refuses the same: another member of staff, the same cabin.
    taken = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=_book(world, at(4, 10), 2, staff=world.staff[1]),
    )
    assert taken.status_code == 409, taken.text
    alternatives = taken.json()["alternatives"]
    assert alternatives
    assert all(a["resource_id"] == str(cabin) for a in alternatives)
    async with db.connection() as conn:
        assert await conn.fetchval(OVERLAPPING_ACTIVE) == 0
        kinds = await conn.fetch(
            "SELECT kind, resource_id FROM allocation WHERE booking_id = $1 ORDER BY kind",
            UUID(first.json()["id"]),
        )
    assert [(k["kind"], k["resource_id"]) for k in kinds] == [
        ("resource", cabin),
        ("staff", world.staff[0]),
    ]


async def test_any_staff_any_cabin_picks_a_free_combination_and_filters_work(
    world: World,
) -> None:
    cabins = await add_cabins(world, 2)
    desk = world.client("front_desk")
    made = [
        await desk.post(
            f"/v1/businesses/{world.business_id}/bookings", json=_book(world, at(4, 11), i)
        )
        for i in range(3)
    ]
    assert [m.status_code for m in made] == [201, 201, 409]
    pairs = {(m.json()["staff_id"], m.json()["resource_id"]) for m in made[:2]}
    assert {r for _, r in pairs} == {str(c) for c in cabins}
    assert len({s for s, _ in pairs}) == 2
    only = await desk.get(
        f"/v1/businesses/{world.business_id}/availability",
        params={
            "service_id": str(world.cut),
            "from": at(4, 13).isoformat(),
            "to": at(4, 14).isoformat(),
            "resource_id": str(cabins[1]),
            "staff_id": str(world.staff[2]),
        },
    )
    assert only.status_code == 200, only.text
    assert {tuple(s["resource_ids"]) for s in only.json()["slots"]} == {(str(cabins[1]),)}
    assert {tuple(s["staff_ids"]) for s in only.json()["slots"]} == {(str(world.staff[2]),)}
    pinned = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=_book(world, at(4, 13), 7, resource_id=str(cabins[1])),
    )
    assert pinned.status_code == 201, pinned.text
    assert pinned.json()["resource_id"] == str(cabins[1])
    wrong = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=_book(world, at(4, 15), 8, resource_id=str(world.staff[0])),
    )
    assert wrong.status_code == 422, wrong.text
    # A change keeps the cabin when it is free at the new time.
    moved = await desk.patch(
        f"/v1/bookings/{pinned.json()['id']}", json={"starts_at": at(4, 16).isoformat()}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["resource_id"] == str(cabins[1])


async def test_concurrent_takers_of_the_last_cabin_one_wins_the_rest_hear_409(
    world: World,
) -> None:
    (cabin,) = await add_cabins(world, 1)
    starts = at(5, 11)
    clients = [world.client("partner") for _ in range(20)]
    go = asyncio.Event()

    async def one(client: httpx.AsyncClient, index: int) -> httpx.Response:
        await go.wait()
        return await client.post(
            f"/v1/businesses/{world.business_id}/bookings", json=_book(world, starts, index)
        )

    tasks = [asyncio.create_task(one(c, i)) for i, c in enumerate(clients)]
    await asyncio.sleep(0.05)
    go.set()
    responses = await asyncio.gather(*tasks)
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 1, codes
    assert codes.count(409) == len(clients) - 1, codes
    for response in responses:
        if response.status_code == 409:
            assert response.json()["alternatives"], response.text
    async with db.connection() as conn:
        assert await conn.fetchval(OVERLAPPING_ACTIVE) == 0
        holders = await conn.fetchval(
            "SELECT count(*) FROM allocation WHERE resource_id = $1 AND active", cabin
        )
    assert holders == 1


async def test_deactivating_a_cabin_puts_its_bookings_at_risk_with_held_alternatives(
    world: World,
) -> None:
    cabins = await add_cabins(world, 2)
    desk = world.client("front_desk")
    made = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=_book(world, at(6, 10), 1, resource_id=str(cabins[0])),
    )
    assert made.status_code == 201, made.text
    off = await world.client("manager").patch(
        f"/v1/businesses/{world.business_id}/resources/{cabins[0]}",
        json={"active": False, "reason": "leak"},
    )
    assert off.status_code == 200, off.text
    body = off.json()
    assert body["affected_booking_ids"] == [made.json()["id"]]
    (offer,) = body["offers"]
    assert offer["status"] == "open"
    assert offer["options"]
    # The options name their cabin (stored on the option row, not only on the hold).
    assert {(o["resource_id"], o["resource_name"]) for o in offer["options"]} == {
        (str(cabins[1]), "Cabin 2")
    }
    async with db.connection() as conn:
        stored = await conn.fetch(
            "SELECT resource_id FROM reschedule_option WHERE offer_id = $1", UUID(offer["id"])
        )
        assert {row["resource_id"] for row in stored} == {cabins[1]}
        held = await conn.fetch(
            "SELECT resource_id FROM booking WHERE status = 'held' AND id = ANY($1::uuid[])",
            [UUID(o["hold_id"]) for o in offer["options"]],
        )
        assert {row["resource_id"] for row in held} == {cabins[1]}
        at_risk = await conn.fetchval(
            "SELECT at_risk_since IS NOT NULL FROM booking WHERE id = $1",
            UUID(made.json()["id"]),
        )
    assert at_risk
    # Accepting goes through the same move as any change: the booking takes the held
    # option's staff, cabin and time (its allocations with it), not counted as a change.
    accepted = await desk.post(f"/v1/offers/{offer['id']}/accept", json={"option": 1})
    assert accepted.status_code == 200, accepted.text
    moved = accepted.json()["booking"]
    assert moved["id"] == made.json()["id"]
    assert moved["resource_id"] == str(cabins[1])
    assert moved["change_count"] == 0
    async with db.connection() as conn:
        mine = await conn.fetch(
            "SELECT resource_id FROM allocation WHERE booking_id = $1 AND active ORDER BY kind",
            UUID(moved["id"]),
        )
        assert [row["resource_id"] for row in mine] == [cabins[1], UUID(moved["staff_id"])]
        assert await conn.fetchval(OVERLAPPING_ACTIVE) == 0
        event = await conn.fetchrow(
            "SELECT changes, reason FROM booking_history WHERE booking_id = $1 "
            "AND event = 'booking.changed'",
            UUID(moved["id"]),
        )
    assert "resource_id" in event["changes"]
    assert "reschedule offer accepted" in event["reason"]


async def test_time_off_is_refused_by_the_database_for_cabin_services_too(world: World) -> None:
    await add_cabins(world, 1)
    async with db.connection() as conn:
        await conn.execute(
            "INSERT INTO time_off (business_id, staff_id, starts_at, ends_at) "
            "VALUES ($1, $2, $3, $4)",
            world.business_id,
            world.staff[0],
            at(7, 9),
            at(7, 12),
        )
    refused = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=_book(world, at(7, 10), 1, staff=world.staff[0]),
    )
    assert refused.status_code == 409, refused.text


async def test_every_cabin_held_is_no_row_at_once_but_a_stale_hold_does_not_fill_the_group(
    world: World,
) -> None:
    # booking_place answers "no row" from its first probes while every cabin is held by a
    # live allocation; a hold past its expiry is no live allocation: the write expires it
    # and takes its cabin.
    cabins = await add_cabins(world, 2)
    starts = at(8, 11)
    desk = world.client("front_desk")
    booked = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=_book(world, starts, 1, resource_id=str(cabins[0])),
    )
    assert booked.status_code == 201, booked.text
    held = await world.client("app").post(
        f"/v1/businesses/{world.business_id}/holds",
        json={
            "service_id": str(world.cut),
            "starts_at": starts.isoformat(),
            "resource_id": str(cabins[1]),
        },
    )
    assert held.status_code == 201, held.text
    hold_id = UUID(held.json()["hold"]["id"])
    full = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings", json=_book(world, starts, 2)
    )
    assert full.status_code == 409, full.text
    assert full.json()["alternatives"]
    async with db.connection() as conn:
        # nothing written for the loser, not even its customer
        assert (
            await conn.fetchval("SELECT count(*) FROM customer WHERE phone = $1", "+393330000002")
            == 0
        )
        await conn.execute(
            "UPDATE booking SET hold_expires_at = now() - interval '1 second' WHERE id = $1",
            hold_id,
        )
    taken = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings", json=_book(world, starts, 3)
    )
    assert taken.status_code == 201, taken.text
    assert taken.json()["resource_id"] == str(cabins[1])
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT status FROM booking WHERE id = $1", hold_id) == (
            "expired"
        )
        assert await conn.fetchval(OVERLAPPING_ACTIVE) == 0


_PLACE = """
    SELECT id FROM booking_place(
        p_business_id => $1, p_service_id => $2, p_staff_ids => $3, p_resource_ids => $4,
        p_starts_at => $5, p_ends_at => $6, p_blocked_from => $5, p_blocked_until => $6,
        p_status => 'confirmed', p_channel => 'front_desk', p_codes => $7,
        p_event => 'booking.created', p_actor_type => 'staff', p_actor_id => 'test',
        p_created_by => 'test', p_customer_name => 'Walk In', p_customer_phone => $8,
        p_customer_locale => 'it')
"""


async def test_a_second_writer_of_a_cabin_queues_on_its_write_lock_not_in_the_constraint(
    world: World,
) -> None:
    # Two writers of one cabin that both reach allocation_no_overlap's check wait for
    # each other there (a deadlock broken only after deadlock_timeout, 1 s); the second
    # writer must instead wait on allocation_write_lock before it writes anything.
    (cabin,) = await add_cabins(world, 1)
    starts, ends = at(5, 15), at(5, 15, 30)
    async with db.connection() as first, db.connection() as second:
        second_pid = await second.fetchval("SELECT pg_backend_pid()")
        transaction = first.transaction()
        await transaction.start()
        args = (world.business_id, world.cut, [world.staff[0]], [cabin], starts, ends)
        assert await first.fetchval(_PLACE, *args, ["TESTAA"], "+393331110001") is not None
        other = (world.business_id, world.cut, [world.staff[1]], [cabin], starts, ends)
        waiting = asyncio.create_task(second.fetchval(_PLACE, *other, ["TESTBB"], "+393331110002"))
        waits_on = None
        async with db.connection() as watcher:
            for _ in range(100):
                waits_on = await watcher.fetchval(
                    "SELECT wait_event FROM pg_stat_activity WHERE pid = $1", second_pid
                )
                if waits_on in {"advisory", "transactionid"}:
                    break
                await asyncio.sleep(0.05)
        await transaction.commit()
        assert await waiting is None  # the cabin is taken: no row, nothing written
    assert waits_on == "advisory"


async def test_writers_of_one_cabin_and_staff_at_other_times_do_not_queue(world: World) -> None:
    # allocation_write_lock keys a resource per half hour its range touches: a write of
    # the same cabin and member of staff later that day, or in the next half hour,
    # neither overlaps the open one nor waits for its commit (one key per resource made
    # every writer of a busy member of staff wait for the previous one's commit).
    (cabin,) = await add_cabins(world, 1)
    async with db.connection() as first, db.connection() as second:
        transaction = first.transaction()
        await transaction.start()
        try:
            args = (world.business_id, world.cut, [world.staff[0]], [cabin])
            placed = await first.fetchval(
                _PLACE, *args, at(5, 15), at(5, 15, 30), ["TESTAA"], "+393331110001"
            )
            assert placed is not None
            for number, (starts, ends) in enumerate(
                [(at(5, 17), at(5, 17, 30)), (at(5, 15, 30), at(5, 16))]  # later; next half hour
            ):
                second_row = await asyncio.wait_for(
                    second.fetchval(
                        _PLACE, *args, starts, ends, [f"TESTB{number}"], f"+39333111001{number}"
                    ),
                    timeout=5,
                )
                assert second_row is not None
        finally:
            await transaction.rollback()
