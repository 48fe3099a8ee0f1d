"""Availability real-time updates: a booking event of a listed business - a desk booking,
a cancellation, a move - makes the worker replace the marketplace's availability around
it (Maps Booking API inventory.partners.availability.replace) with what our search says
then, at a fake Maps Booking server on 127.0.0.1; a refused call is retried."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from arq import Retry

from booking import db
from booking.marketplace.listing import service_availability
from tests.marketplace.inventory_fake import (
    FakeInventory,
    availability_follow_ups,
    is_open,
    list_business,
    run_job,
)
from tests.support import World, at


async def test_a_desk_booking_and_its_cancellation_replace_the_slots_around_it(
    world: World, inventory: FakeInventory
) -> None:
    await list_business(world, inventory.url)
    _, last = await availability_follow_ups(0)
    when = at(2, 10)
    made = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings", json=world.booking_body(when)
    )
    assert made.status_code == 201, made.text
    staff = made.json()["staff_id"]

    [job], last = await availability_follow_ups(last)
    assert await run_job(job) == await run_job(job)  # a rerun sends the same current truth
    (partner, body), (_, again) = inventory.calls
    assert partner == str(world.partner_id)
    assert body == again
    groups = body["extendedServiceAvailability"]
    # Every active service of the business, over the day either side of the booking.
    async with db.connection() as conn:
        active = {
            str(r["id"])
            for r in await conn.fetch(
                "SELECT id FROM service WHERE business_id = $1 AND active", world.business_id
            )
        }
    assert {g["serviceId"] for g in groups} == active
    [cut] = [g for g in groups if g["serviceId"] == str(world.cut)]
    assert cut["merchantId"] == str(world.business_id)
    start = datetime.fromisoformat(cut["startTimeRestrict"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(cut["endTimeRestrict"].replace("Z", "+00:00"))
    assert start <= when - timedelta(hours=23)
    assert end >= when + timedelta(hours=23)
    assert not is_open(body, world.cut, staff, when)  # taken
    # Exactly what the availability feed (and BatchAvailabilityLookup) say for the window.
    expected = await service_availability(world.business_id, world.cut, start, end)
    assert len(cut["availability"]) == len(expected)
    assert {
        (s["startTime"], s["resources"]["staffId"], s["duration"], s["spotsOpen"])
        for s in cut["availability"]
    } == {
        (
            datetime.fromtimestamp(e["start_sec"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            e["resources"]["staff_id"],
            f"{e['duration_sec']}s",
            "1",
        )
        for e in expected
    }

    cancelled = await world.client("front_desk").post(
        f"/v1/bookings/{made.json()['id']}/cancel", json={}
    )
    assert cancelled.status_code == 200, cancelled.text
    [job], last = await availability_follow_ups(last)
    inventory.fail_next = 1
    with pytest.raises(Retry):
        await run_job(job)  # 503: retried with backoff
    await run_job(job, tries=2)
    assert is_open(inventory.calls[-1][1], world.cut, staff, when)  # open again


async def test_a_move_replaces_both_the_old_and_the_new_time(
    world: World, inventory: FakeInventory
) -> None:
    await list_business(world, inventory.url)
    _, last = await availability_follow_ups(0)
    made = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings", json=world.booking_body(at(2, 10))
    )
    assert made.status_code == 201, made.text
    _, last = await availability_follow_ups(last)
    moved = await world.client("front_desk").patch(
        f"/v1/bookings/{made.json()['id']}", json={"starts_at": at(5, 15).isoformat()}
    )
    assert moved.status_code == 200, moved.text

    [job], last = await availability_follow_ups(last)
    await run_job(job)
    [(_, body)] = inventory.calls
    [cut] = [g for g in body["extendedServiceAvailability"] if g["serviceId"] == str(world.cut)]
    start = datetime.fromisoformat(cut["startTimeRestrict"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(cut["endTimeRestrict"].replace("Z", "+00:00"))
    assert start <= at(2, 10) < at(5, 15) < end
    staff = made.json()["staff_id"]
    assert is_open(body, world.cut, staff, at(2, 10))  # the old time freed
    assert not is_open(body, world.cut, staff, at(5, 15))  # the new one taken


async def test_an_unlisted_business_sends_nothing(world: World) -> None:
    _, last = await availability_follow_ups(0)
    made = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings", json=world.booking_body(at(2, 10))
    )
    assert made.status_code == 201, made.text
    assert (await availability_follow_ups(last))[0] == []
