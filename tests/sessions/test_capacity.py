"""Seats taken never exceed a session's capacity: the database's CHECK decides, for
direct bookings, holds, raw SQL and 200 clients at once."""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
import httpx
import pytest

from booking import db
from tests.sessions.support import CAPACITY, book, group_service, schedule, seats_in_sql
from tests.support import World, at

CLIENTS = 200


# 200 real clients on a machine shared by several test suites can outlast the default
# 300 s per test (the assertions are the same, only the clock is longer).
@pytest.mark.timeout(900)
async def test_two_hundred_clients_mixed_holds_never_oversell(world: World) -> None:
    service_id = await group_service(world)
    session = await schedule(world, service_id, at(6, 18))
    sid = session["id"]
    start = asyncio.Event()
    clients = [world.client("partner") for _ in range(CLIENTS)]

    async def one(client: httpx.AsyncClient, index: int) -> tuple[int, int, httpx.Response]:
        party = index % 3 + 1  # party sizes 1-3
        await start.wait()
        if index % 2:  # half hold, half book directly
            response = await client.post(
                f"/v1/businesses/{world.business_id}/sessions/{sid}/holds",
                json={"seats": party},
            )
        else:
            response = await book(client, world, sid, index, party)
        return index, party, response

    tasks = [asyncio.create_task(one(client, i)) for i, client in enumerate(clients)]
    await asyncio.sleep(0.05)
    start.set()
    results = await asyncio.gather(*tasks)

    won = [(party, r) for _, party, r in results if r.status_code == 201]
    lost = [r for _, _, r in results if r.status_code != 201]
    assert {r.status_code for r in lost} == {409}, {r.status_code for r in lost}
    for response in lost:
        problem = response.json()
        assert problem["type"] == "/problems/session-full", problem
        assert 0 <= problem["seats_left"] < 3
    taken = sum(party for party, _ in won)
    assert CAPACITY - 2 <= taken <= CAPACITY  # a party of 3 may not fit the last 2 seats
    assert await seats_in_sql(sid) == (taken, taken)
    async with db.connection() as conn:
        statuses = await conn.fetch(
            "SELECT status, count(*) FROM booking WHERE session_id = $1 GROUP BY status",
            UUID(sid),
        )
        # The session holds its teacher once; seats hold no allocation of their own.
        allocations = await conn.fetchval(
            "SELECT count(*) FROM allocation WHERE resource_id = $1 AND active",
            world.staff[0],
        )
    assert {row["status"] for row in statuses} <= {"held", "confirmed"}
    assert allocations == 1


async def test_a_raw_insert_past_capacity_trips_the_constraint(world: World) -> None:
    service_id = await group_service(world, capacity=2)
    session = await schedule(world, service_id, at(6, 18))
    for index in range(2):
        assert (await book(world.client(), world, session["id"], index)).status_code == 201
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM booking WHERE session_id = $1 LIMIT 1", UUID(session["id"])
        )
        with pytest.raises(asyncpg.CheckViolationError) as raised:
            await conn.execute(
                "INSERT INTO booking (business_id, staff_id, service_id, session_id, seats, "
                "customer_id, status, channel, reference_code, starts_at, ends_at, "
                "blocked_from, blocked_until) SELECT business_id, staff_id, service_id, "
                "session_id, 1, customer_id, 'confirmed', 'system', 'RAWSQL', starts_at, "
                "ends_at, blocked_from, blocked_until FROM booking WHERE id = $1",
                row["id"],
            )
        assert raised.value.constraint_name == "session_seats_within_capacity"
        # Nor can raw SQL open seats by rewriting the counter or shrinking the class.
        with pytest.raises(asyncpg.PostgresError) as counter:
            await conn.execute(
                "UPDATE session SET seats_taken = 0 WHERE id = $1", row["session_id"]
            )
        assert counter.value.sqlstate == "BK003"
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE session SET capacity = 1 WHERE id = $1", row["session_id"])
        # Growing a party in place is counted too.
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE booking SET seats = 2 WHERE id = $1", row["id"])
    assert await seats_in_sql(session["id"]) == (2, 2)


async def test_expired_holds_give_their_seats_back(world: World) -> None:
    service_id = await group_service(world, capacity=3)
    session = await schedule(world, service_id, at(6, 18))
    sid = session["id"]
    hold = await world.client("partner").post(
        f"/v1/businesses/{world.business_id}/sessions/{sid}/holds", json={"seats": 3}
    )
    assert hold.status_code == 201, hold.text
    full = await book(world.client(), world, sid, 1)
    assert full.status_code == 409
    assert full.json()["seats_left"] == 0
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE booking SET hold_expires_at = now() - interval '1 second' WHERE id = $1",
            UUID(hold.json()["hold"]["id"]),
        )
    again = await book(world.client(), world, sid, 1, seats=2)
    assert again.status_code == 201, again.text  # the lazy release inside the write
    async with db.connection() as conn:
        status = await conn.fetchval(
            "SELECT status FROM booking WHERE id = $1", UUID(hold.json()["hold"]["id"])
        )
    assert status == "expired"
    assert await seats_in_sql(sid) == (2, 2)


async def test_a_confirmed_hold_keeps_its_seats_and_a_released_one_frees_them(
    world: World,
) -> None:
    service_id = await group_service(world, capacity=4)
    sid = (await schedule(world, service_id, at(6, 18)))["id"]
    client = world.client("partner")
    first = (
        await client.post(
            f"/v1/businesses/{world.business_id}/sessions/{sid}/holds", json={"seats": 2}
        )
    ).json()
    second = (
        await client.post(
            f"/v1/businesses/{world.business_id}/sessions/{sid}/holds", json={"seats": 2}
        )
    ).json()
    confirmed = await client.post(
        f"/v1/holds/{first['hold']['id']}/confirm",
        json={
            "hold_token": first["hold_token"],
            "customer": {"name": "Anna", "phone": "+393331112222"},
        },
    )
    assert confirmed.status_code == 201, confirmed.text
    assert confirmed.json()["seats"] == 2
    assert await seats_in_sql(sid) == (4, 4)
    released = await client.post(
        f"/v1/holds/{second['hold']['id']}/release", json={"hold_token": second["hold_token"]}
    )
    assert released.status_code == 200
    assert await seats_in_sql(sid) == (2, 2)
