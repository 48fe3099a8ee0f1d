"""Booking notifications: a desk move or cancellation of an Actions Center booking
reaches a fake notification server (127.0.0.1) as the Maps Booking API's
notification.partners.bookings.patch; once per version, retried with backoff."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any
from uuid import UUID

import pytest
from aiohttp import web
from arq import Retry

from booking import db
from booking.marketplace.notify import NOTIFY_JOB, marketplace_notify
from booking.outbox.dispatch import FollowUpJob
from booking.outbox.service import handle_event
from booking.settings import Settings
from booking.worker import OUTBOX_HANDLERS
from tests.marketplace.test_conformance import ac, create, slot
from tests.support import World, at, local_server


@dataclass
class FakeMapsBooking:
    url: str = ""
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    fail_next: int = 0


@pytest.fixture
async def maps() -> AsyncIterator[FakeMapsBooking]:
    state = FakeMapsBooking()

    async def patch(request: web.Request) -> web.Response:
        if state.fail_next:
            state.fail_next -= 1
            return web.Response(status=503)
        body = json.loads(await request.text())
        partner, booking = request.match_info["partner"], request.match_info["booking"]
        mask = request.query.get("updateMask", "")
        problems = [
            f"name {body.get('name')!r}"
            for _ in [0]
            if body.get("name") != f"partners/{partner}/bookings/{booking}"
        ]
        for key in ("merchantId", "serviceId"):
            if not body.get(key):
                problems.append(f"{key} missing")
        for path in mask.split(","):
            if path not in body:
                problems.append(f"{path} in updateMask but not in the body")
        if problems or request.headers.get("content-type") != "application/json":
            state.rejected.append("; ".join(problems) or "content-type")
            return web.Response(status=400)
        state.calls.append((booking, mask, body))
        return web.json_response(body)

    app = web.Application()
    app.router.add_patch("/v1alpha/notification/partners/{partner}/bookings/{booking}", patch)
    async with local_server(app) as state.url:
        yield state


async def _notified_world(listed: World, maps: FakeMapsBooking) -> World:
    response = await listed.client("manager").put(
        f"/v1/businesses/{listed.business_id}/marketplaces/actions-center",
        json={"partner_id": str(listed.partner_id), "notification_base_url": maps.url},
    )
    assert response.status_code == 200, response.text
    return listed


SEEN: set[int] = set()


async def _jobs() -> list[FollowUpJob]:
    """What the relay does with every outbox row it has not handled yet."""
    async with db.connection() as conn:
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM outbox ORDER BY id")]
    jobs: list[FollowUpJob] = []
    fresh = [i for i in ids if i not in SEEN]
    SEEN.update(ids)
    for outbox_id in fresh:
        jobs += [
            j
            for j in await handle_event(outbox_id, OUTBOX_HANDLERS) or []
            if j.function == NOTIFY_JOB
        ]
    return jobs


async def _run(job: FollowUpJob, tries: int = 1) -> str:
    return await marketplace_notify({"settings": Settings.from_env(), "job_try": tries}, *job.args)


async def test_desk_move_then_cancel_notify_once_each(listed: World, maps: FakeMapsBooking) -> None:
    SEEN.clear()
    world = await _notified_world(listed, maps)
    made = await create(ac(world), slot(world, 2, 10), "n-1")
    booking_id = made["booking"]["booking_id"]
    assert await _jobs() == []  # the partner's own CreateBooking is no news to it

    moved = await world.client("front_desk").patch(
        f"/v1/bookings/{booking_id}", json={"starts_at": at(2, 15).isoformat()}
    )
    assert moved.status_code == 200, moved.text
    jobs = await _jobs()
    assert len(jobs) == 1
    assert await _run(jobs[0]) == "sent startTime,duration for version 2"
    assert await _run(jobs[0]) == "version 2 already sent"  # a rerun sends nothing
    assert await _jobs() == []  # and the relay does not hand it out twice
    ((called, mask, body),) = maps.calls
    assert called == booking_id
    assert mask == "startTime,duration"
    assert body["duration"] == "1800s"
    assert body["startTime"] == at(2, 15).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["status"] == "CONFIRMED"

    maps.fail_next = 1
    cancelled = await world.client("front_desk").post(
        f"/v1/bookings/{booking_id}/cancel", json={"reason": "staff sick"}
    )
    assert cancelled.status_code == 200, cancelled.text
    (job,) = await _jobs()
    with pytest.raises(Retry):
        await _run(job)  # 503: retried with backoff
    assert await _run(job, tries=2) == "sent status for version 3"
    assert maps.calls[-1][1:] == (
        "status",
        {
            "name": f"partners/{world.partner_id}/bookings/{booking_id}",
            "merchantId": str(world.business_id),
            "serviceId": str(world.cut),
            "status": "CANCELED",
        },
    )
    assert maps.rejected == []


async def test_partner_updates_and_other_bookings_send_nothing(
    listed: World, maps: FakeMapsBooking
) -> None:
    SEEN.clear()
    world = await _notified_world(listed, maps)
    made = await create(ac(world), slot(world, 2, 11), "n-2")
    booking_id = made["booking"]["booking_id"]
    update = await ac(world).post(
        "/actions-center/v3/UpdateBooking/",
        json={"booking": {"booking_id": booking_id, "status": "CANCELED"}},
    )
    assert update.json()["booking"]["status"] == "CANCELED"
    desk = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(2, 12)),
    )
    assert desk.status_code == 201
    await world.client("front_desk").post(f"/v1/bookings/{desk.json()['id']}/cancel", json={})
    assert await _jobs() == []
    async with db.connection() as conn:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM marketplace_notified WHERE booking_id = $1", UUID(booking_id)
            )
            == 0
        )
