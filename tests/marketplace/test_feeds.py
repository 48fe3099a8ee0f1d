"""Feeds in the feed spec's JSON: merchant, service and availability; the availability
feed for 20 staff x 30 days is exactly what BatchAvailabilityLookup answers."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import httpx

from booking import db
from booking.outbox.service import handle_event
from booking.worker import OUTBOX_HANDLERS
from tests.support import ROME, World, at, days_ahead, rome


def ac(world: World, who: str = "partner") -> httpx.AsyncClient:
    basic = base64.b64encode(f"ac:{world.keys[who]}".encode()).decode()
    return world.client(None, headers={"Authorization": f"Basic {basic}"})


async def _twenty_staff(world: World) -> list[str]:
    async with db.transaction() as conn:
        for n in range(17):
            staff_id = await conn.fetchval(
                "INSERT INTO staff (business_id, name) VALUES ($1, $2) RETURNING id",
                world.business_id,
                f"Extra {n}",
            )
            await conn.executemany(
                "INSERT INTO working_hours (business_id, staff_id, weekday, opens_at, "
                "closes_at) VALUES ($1, $2, $3, '09:00', '18:00')",
                [(world.business_id, staff_id, weekday) for weekday in range(7)],
            )
            await conn.execute(
                "INSERT INTO service_staff (business_id, service_id, staff_id) VALUES ($1, $2, $3)",
                world.business_id,
                world.cut,
                staff_id,
            )
        rows = await conn.fetch(
            "SELECT staff_id FROM service_staff WHERE business_id = $1 AND service_id = $2",
            world.business_id,
            world.cut,
        )
    return [str(row["staff_id"]) for row in rows]


async def _run_outbox() -> None:
    async with db.connection() as conn:
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM outbox ORDER BY id")]
    for outbox_id in ids:
        await handle_event(outbox_id, OUTBOX_HANDLERS)


async def test_feeds_are_served_to_the_partner_only(listed: World) -> None:
    world = listed
    merchants = await ac(world).get("/actions-center/v3/feeds/merchant.json")
    assert merchants.status_code == 200, merchants.text
    body = merchants.json()
    assert body["metadata"]["processing_instruction"] == "PROCESS_AS_COMPLETE"
    assert [m["merchant_id"] for m in body["merchant"]] == [str(world.business_id)]
    services = (await ac(world).get("/actions-center/v3/feeds/service.json")).json()
    assert {s["service_id"] for s in services["service"]} == {
        str(world.cut),
        str(world.colour),
        str(world.consult),
    }
    other = (await ac(world, "partner_b").get("/actions-center/v3/feeds/merchant.json")).json()
    assert other["merchant"] == []
    anonymous = await world.client(None).get("/actions-center/v3/feeds/merchant.json")
    assert anonymous.status_code == 401
    unknown = await ac(world).get("/actions-center/v3/feeds/secrets.json")
    assert unknown.status_code == 404


async def test_availability_feed_matches_batch_availability_lookup(listed: World) -> None:
    world = listed
    staff = await _twenty_staff(world)
    assert len(staff) == 20
    client = ac(world)
    # Something booked, so the feed is not just the working hours.
    made = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(3, 10), staff=world.staff[0]),
    )
    assert made.status_code == 201, made.text
    feed = (await client.get("/actions-center/v3/feeds/availability.json")).json()
    cut = [
        a
        for group in feed["service_availability"]
        for a in group["availability"]
        if a["service_id"] == str(world.cut)
    ]
    first, last = days_ahead(1), days_ahead(29)  # whole days inside the 30-day horizon
    low, high = rome(first, 0).timestamp(), rome(last, 23, 59).timestamp()
    in_feed = {
        (a["start_sec"], a["resources"]["staff_id"]) for a in cut if low <= a["start_sec"] <= high
    }
    grid: list[dict[str, Any]] = []
    day = first
    while day <= last:
        moment = rome(day, 9)
        while moment < rome(day, 18):
            for member in staff:
                grid.append(
                    {
                        "service_id": str(world.cut),
                        "start_sec": str(int(moment.timestamp())),
                        "duration_sec": "1800",
                        "resource_ids": {"staff_id": member},
                    }
                )
            moment = (moment + timedelta(minutes=15)).astimezone(ROME)
        day += timedelta(days=1)
    available: set[tuple[int, str]] = set()
    for index in range(0, len(grid), 2000):
        answer = await client.post(
            "/actions-center/v3/BatchAvailabilityLookup/",
            json={"merchant_id": str(world.business_id), "slot_time": grid[index : index + 2000]},
        )
        assert answer.status_code == 200, answer.text
        for item in answer.json()["slot_time_availability"]:
            if item["available"]:
                slot = item["slot_time"]
                available.add((int(slot["start_sec"]), slot["resource_ids"]["staff_id"]))
    assert len(in_feed) > 20 * 29 * 30
    assert available == in_feed
    taken = (int(at(3, 10).timestamp()), str(world.staff[0]))
    assert taken not in in_feed


async def test_the_feed_is_regenerated_after_a_change(listed: World) -> None:
    world = listed
    client = ac(world)
    moment = int(at(2, 11).timestamp())

    async def offered() -> set[str]:
        feed = (await client.get("/actions-center/v3/feeds/availability.json")).json()
        return {
            a["resources"]["staff_id"]
            for group in feed["service_availability"]
            for a in group["availability"]
            if a["service_id"] == str(world.cut) and a["start_sec"] == moment
        }

    assert str(world.staff[1]) in await offered()
    made = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(datetime.fromtimestamp(moment, ROME), staff=world.staff[1]),
    )
    assert made.status_code == 201, made.text
    await _run_outbox()  # the relay's in-database handler marks the feeds changed
    assert str(world.staff[1]) not in await offered()


async def test_only_the_business_that_changed_is_searched_again(
    listed: World, tmp_path: Any
) -> None:
    """Incremental: the availability feed is put together from one part per business;
    a booking searches again only its own business's part."""
    from booking.marketplace.listing import _availability_incremental

    world = listed
    async with db.connection() as conn:  # a second business listed with the same partner
        await conn.execute(
            "INSERT INTO marketplace_listing (business_id, partner_id) VALUES ($1, $2)",
            world.other_business_id,
            world.partner_id,
        )
    feed_dir = str(tmp_path)
    both = {world.business_id, world.other_business_id}
    first, searched = await _availability_incremental(feed_dir, world.partner_id)
    assert set(searched) == both
    other_part = tmp_path / str(world.partner_id) / "parts" / f"{world.other_business_id}.json"
    written = other_part.stat().st_mtime_ns
    again, searched = await _availability_incremental(feed_dir, world.partner_id)
    assert searched == []  # nothing changed: both parts reused
    assert again["service_availability"] == first["service_availability"]

    made = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(2, 11), staff=world.staff[1]),
    )
    assert made.status_code == 201, made.text
    await _run_outbox()  # the relay's handler marks this business's listing changed
    after, searched = await _availability_incremental(feed_dir, world.partner_id)

    assert searched == [world.business_id]
    moment = int(at(2, 11).timestamp())

    def offered(feed: dict[str, Any]) -> set[tuple[str, str]]:
        return {
            (a["merchant_id"], a["resources"]["staff_id"])
            for group in feed["service_availability"]
            for a in group["availability"]
            if a["start_sec"] == moment
        }

    assert (str(world.business_id), str(world.staff[1])) in offered(first)
    assert (str(world.business_id), str(world.staff[1])) not in offered(after)
    # The other business's part is still in it, unchanged (one group per active service).
    assert len(after["service_availability"]) == len(first["service_availability"])
    assert other_part.stat().st_mtime_ns == written
