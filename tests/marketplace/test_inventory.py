"""Availability real-time updates: a booking event of a listed business - a desk booking,
a cancellation, a move - makes the worker replace the marketplace's availability around
it (Maps Booking API inventory.partners.availability.replace) with what our search says
then, at a fake Maps Booking server on 127.0.0.1; a refused call is retried."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from aiohttp import web
from arq import Retry

from booking import db
from booking.marketplace.inventory import AVAILABILITY_JOB, marketplace_availability
from booking.marketplace.listing import service_availability
from booking.outbox.dispatch import FollowUpJob
from booking.outbox.service import handle_event
from booking.settings import Settings
from booking.worker import OUTBOX_HANDLERS
from tests.support import World, at, local_server


@dataclass
class FakeInventory:
    url: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_next: int = 0


@pytest.fixture
async def inventory() -> AsyncIterator[FakeInventory]:
    state = FakeInventory()

    async def replace(request: web.Request) -> web.Response:
        if state.fail_next:
            state.fail_next -= 1
            return web.Response(status=503)
        assert request.headers.get("content-type") == "application/json"
        body = json.loads(await request.text())
        state.calls.append((request.match_info["partner"], body))
        return web.json_response(body)

    app = web.Application()
    app.router.add_post("/v1alpha/inventory/partners/{partner}/availability:replace", replace)
    async with local_server(app) as state.url:
        yield state


async def _list(world: World, url: str) -> None:
    response = await world.client("manager").put(
        f"/v1/businesses/{world.business_id}/marketplaces/actions-center",
        json={"partner_id": str(world.partner_id), "notification_base_url": url},
    )
    assert response.status_code == 200, response.text


async def _jobs(after: int) -> tuple[list[FollowUpJob], int]:
    """The relay's follow-ups of the outbox rows after ``after``: the availability ones."""
    async with db.connection() as conn:
        ids = [
            r["id"]
            for r in await conn.fetch("SELECT id FROM outbox WHERE id > $1 ORDER BY id", after)
        ]
    jobs: list[FollowUpJob] = []
    for outbox_id in ids:
        jobs += [
            j
            for j in await handle_event(outbox_id, OUTBOX_HANDLERS) or []
            if j.function == AVAILABILITY_JOB
        ]
    return jobs, max(ids, default=after)


async def _run(job: FollowUpJob, tries: int = 1) -> str:
    context = {"settings": Settings.from_env(), "job_try": tries}
    return await marketplace_availability(context, *job.args)


def _open(body: dict[str, Any], service: UUID, staff: str, when: datetime) -> bool:
    [group] = [g for g in body["extendedServiceAvailability"] if g["serviceId"] == str(service)]
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return any(
        s["startTime"] == stamp and s.get("resources", {}).get("staffId") == staff
        for s in group["availability"]
    )


async def test_a_desk_booking_and_its_cancellation_replace_the_slots_around_it(
    world: World, inventory: FakeInventory
) -> None:
    await _list(world, inventory.url)
    _, last = await _jobs(0)
    when = at(2, 10)
    made = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings", json=world.booking_body(when)
    )
    assert made.status_code == 201, made.text
    staff = made.json()["staff_id"]

    [job], last = await _jobs(last)
    assert await _run(job) == await _run(job)  # a rerun sends the same current truth
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
    assert not _open(body, world.cut, staff, when)  # taken
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
    [job], last = await _jobs(last)
    inventory.fail_next = 1
    with pytest.raises(Retry):
        await _run(job)  # 503: retried with backoff
    await _run(job, tries=2)
    assert _open(inventory.calls[-1][1], world.cut, staff, when)  # open again


async def test_a_move_replaces_both_the_old_and_the_new_time(
    world: World, inventory: FakeInventory
) -> None:
    await _list(world, inventory.url)
    _, last = await _jobs(0)
    made = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings", json=world.booking_body(at(2, 10))
    )
    assert made.status_code == 201, made.text
    _, last = await _jobs(last)
    moved = await world.client("front_desk").patch(
        f"/v1/bookings/{made.json()['id']}", json={"starts_at": at(5, 15).isoformat()}
    )
    assert moved.status_code == 200, moved.text

    [job], last = await _jobs(last)
    await _run(job)
    [(_, body)] = inventory.calls
    [cut] = [g for g in body["extendedServiceAvailability"] if g["serviceId"] == str(world.cut)]
    start = datetime.fromisoformat(cut["startTimeRestrict"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(cut["endTimeRestrict"].replace("Z", "+00:00"))
    assert start <= at(2, 10) < at(5, 15) < end
    staff = made.json()["staff_id"]
    assert _open(body, world.cut, staff, at(2, 10))  # the old time freed
    assert not _open(body, world.cut, staff, at(5, 15))  # the new one taken


async def test_an_unlisted_business_sends_nothing(world: World) -> None:
    _, last = await _jobs(0)
    made = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings", json=world.booking_body(at(2, 10))
    )
    assert made.status_code == 201, made.text
    assert (await _jobs(last))[0] == []
