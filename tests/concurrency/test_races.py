"""Real concurrent HTTP clients racing for the same time: PostgreSQL decides.

First the race is shown to be real: with the exclusion constraint dropped (in a
scratch copy of the schema), concurrent clients do double-book. Then, with the
constraint in place, exactly one wins.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from booking import db
from booking.access.principal import Principal
from booking.bookings.checks import CustomerInput
from booking.bookings.placing import create_booking
from booking.errors import SlotTaken
from tests.support import World, active_bookings_between, at

CLIENTS = 50


async def _race(
    world: World, make_request: Any, clients: int = CLIENTS, who: str = "partner"
) -> list[httpx.Response]:
    start = asyncio.Event()
    pool = [world.client(who) for _ in range(clients)]

    async def one(client: httpx.AsyncClient, index: int) -> httpx.Response:
        await start.wait()
        response: httpx.Response = await make_request(client, index)
        return response

    tasks = [asyncio.create_task(one(client, i)) for i, client in enumerate(pool)]
    await asyncio.sleep(0.05)
    start.set()
    return await asyncio.gather(*tasks)


async def test_fifty_clients_one_slot_exactly_one_booking(world: World) -> None:
    starts = at(4, 11)

    async def book(client: httpx.AsyncClient, index: int) -> httpx.Response:
        return await client.post(
            f"/v1/businesses/{world.business_id}/bookings",
            json=world.booking_body(
                starts, staff=world.staff[0], phone=f"+39333{index:07d}", name=f"Client {index}"
            ),
        )

    responses = await _race(world, book)
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == CLIENTS - 1, statuses
    for response in responses:
        if response.status_code == 409:
            problem = response.json()
            assert response.headers["content-type"].startswith("application/problem+json")
            assert problem["type"] == "/problems/slot-taken"
            assert problem["alternatives"], problem
    rows = await active_bookings_between(starts, starts.replace(minute=40))
    assert len(rows) == 1


async def test_concurrent_overlapping_holds_at_most_one_wins(world: World) -> None:
    # Overlapping but not identical times: 10:00, 10:15, 10:20 ... all for one person.
    offsets = [0, 15, 20, 10, 5, 25] * 5

    async def hold(client: httpx.AsyncClient, index: int) -> httpx.Response:
        starts = at(5, 10, offsets[index])
        return await client.post(
            f"/v1/businesses/{world.business_id}/holds",
            json={
                "service_id": str(world.cut),
                "starts_at": starts.isoformat(),
                "staff_id": str(world.staff[1]),
            },
        )

    responses = await _race(world, hold, clients=len(offsets))
    winners = [r for r in responses if r.status_code == 201]
    assert len(winners) == 1, [r.status_code for r in responses]
    assert {r.status_code for r in responses} == {201, 409}
    rows = await active_bookings_between(at(5, 9), at(5, 12))
    assert len(rows) == 1


async def test_expired_hold_no_longer_blocks_concurrent_takers(world: World) -> None:
    first = await world.client("partner").post(
        f"/v1/businesses/{world.business_id}/holds",
        json={
            "service_id": str(world.cut),
            "starts_at": at(5, 14).isoformat(),
            "staff_id": str(world.staff[1]),
        },
    )
    assert first.status_code == 201
    async with db.connection() as conn:
        await conn.execute("UPDATE booking SET hold_expires_at = now() - interval '1 second'")

    async def hold(client: httpx.AsyncClient, index: int) -> httpx.Response:
        return await client.post(
            f"/v1/businesses/{world.business_id}/holds",
            json={
                "service_id": str(world.cut),
                "starts_at": at(5, 14).isoformat(),
                "staff_id": str(world.staff[1]),
            },
        )

    responses = await _race(world, hold, clients=20)
    assert sorted(r.status_code for r in responses).count(201) == 1


async def test_two_desks_moving_different_bookings_into_one_slot(world: World) -> None:
    desk = world.client("front_desk")
    ids = []
    for hour in (9, 15):
        made = await desk.post(
            f"/v1/businesses/{world.business_id}/bookings",
            json=world.booking_body(at(6, hour), staff=world.staff[2], phone=f"+3933300000{hour}"),
        )
        ids.append(made.json()["id"])
    target = at(6, 12)

    async def move(client: httpx.AsyncClient, index: int) -> httpx.Response:
        return await client.patch(
            f"/v1/bookings/{ids[index % 2]}",
            json={"starts_at": target.isoformat(), "staff_id": str(world.staff[2])},
        )

    responses = await _race(world, move, clients=2, who="front_desk")
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409]
    rows = await active_bookings_between(at(6, 8), at(6, 18))
    assert len(rows) == 2  # nobody lost a booking
    assert sum(1 for row in rows if row["starts_at"] == target) == 1


async def test_without_the_constraint_the_race_double_books(world: World) -> None:
    """The guard is what holds: drop it (inside a transaction we roll back) and
    plain concurrent inserts of overlapping rows all succeed."""
    starts = at(7, 10)
    async with db.engine().transaction() as txn:
        conn = txn.connection
        await conn.execute("ALTER TABLE allocation DROP CONSTRAINT allocation_no_overlap")
        for code in ("DBL001", "DBL002"):
            await conn.execute(
                """
                INSERT INTO booking (business_id, staff_id, service_id, status, channel,
                    reference_code, starts_at, ends_at, blocked_from, blocked_until,
                    hold_expires_at)
                VALUES ($1, $2, $3, 'held', 'system', $4, $5::timestamptz,
                        $5 + interval '30 minutes', $5, $5 + interval '30 minutes',
                        now() + interval '1 hour')
                """,
                world.business_id,
                world.staff[0],
                world.cut,
                code,
                starts,
            )
        doubled = await conn.fetchval("SELECT count(*) FROM booking WHERE starts_at = $1", starts)
        await txn.rollback()
    assert doubled == 2
    async with db.connection() as conn:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM pg_constraint WHERE conname = 'allocation_no_overlap'"
            )
            == 1
        )


async def _close_pool() -> None:
    pool = db.engine().pool
    if pool is not None:
        try:
            await asyncio.wait_for(pool.close(), timeout=10)
        except TimeoutError:  # a connection a failed test left taken
            pool.terminate()
        db.engine().pool = None


@pytest.fixture
async def three_connection_pool(database_url: str, db_pool: None) -> AsyncIterator[None]:
    """This process's pool cut to three connections for one test, then put back."""
    await _close_pool()
    await db.start_pool(database_url, 1, 3)
    try:
        yield
    finally:
        await _close_pool()
        await db.start_pool(database_url, 2, 30)


async def test_a_loser_s_alternatives_never_wait_behind_the_pool_queue(
    world: World, three_connection_pool: None
) -> None:
    """A refused write searches its alternatives on the connection it wrote with, before
    giving it back. Here every connection is busy - a winner's open transaction, one
    taken elsewhere, the loser's own - and two requests queue for one, each keeping it
    until the loser has answered: the loser answers all the same. (It used to give its
    connection back and queue for another to search: behind every queued request, so in
    a 500-client race all the losers answered at the end; here, never.)"""
    starts = at(4, 11)
    staff = world.staff[0]
    principal = Principal(kind="admin", id="test")

    def book(name: str, phone: str) -> Any:
        return create_booking(
            principal,
            world.business_id,
            world.cut,
            starts,
            CustomerInput(name=name, phone=phone),
            staff_id=staff,
        )

    winner_in, finish = asyncio.Event(), asyncio.Event()

    async def winner() -> None:  # connection 1: written, not yet committed
        async with db.transaction():
            await book("First", "+393331110001")
            winner_in.set()
            await finish.wait()

    engine_pool = db.engine().pool
    assert engine_pool is not None
    tasks = [asyncio.create_task(winner())]
    await asyncio.wait_for(winner_in.wait(), timeout=10)
    other = await engine_pool.acquire()  # connection 2

    async def lose() -> SlotTaken:  # connection 3: queues on the winner's write lock
        with pytest.raises(SlotTaken) as refused:
            await book("Second", "+393331110002")
        return refused.value

    loser = asyncio.create_task(lose())
    tasks.append(loser)
    got: list[str] = []

    async def queued(name: str) -> None:
        async with db.connection():
            got.append(name)
            await asyncio.shield(loser)

    try:
        await asyncio.sleep(0.3)
        assert not loser.done()
        tasks += [asyncio.create_task(queued("A")), asyncio.create_task(queued("B"))]
        await asyncio.sleep(0.1)
        assert got == []  # both wait for a connection
        finish.set()  # the winner commits: its connection goes to A, the loser is refused
        refusal = await asyncio.wait_for(asyncio.shield(loser), timeout=10)
        alternatives = refusal.extra["alternatives"]
        assert alternatives  # the nearest free times, searched all the same
        offered = {(a["starts_at"], a["staff_id"]) for a in alternatives}
        assert (starts.isoformat(), str(staff)) not in offered  # not the time just taken
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
        assert sorted(got) == ["A", "B"]
    finally:
        finish.set()
        for task in tasks:
            task.cancel()
        await engine_pool.release(other)
