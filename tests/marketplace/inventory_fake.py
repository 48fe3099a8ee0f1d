"""The fake Maps Booking inventory server (availability:replace) on 127.0.0.1, and the
steps the availability-update tests share: list the world's business with it, run the
outbox handlers on the new rows, run a job as the worker would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from aiohttp import web

from booking import db
from booking.marketplace.inventory import AVAILABILITY_JOB, marketplace_availability
from booking.outbox.dispatch import FollowUpJob
from booking.outbox.service import handle_event
from booking.settings import Settings
from booking.worker import OUTBOX_HANDLERS
from tests.support import World, local_server


@dataclass
class FakeInventory:
    url: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_next: int = 0


@asynccontextmanager
async def fake_inventory() -> AsyncIterator[FakeInventory]:
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


async def list_business(world: World, url: str, horizon_days: int | None = None) -> None:
    body: dict[str, Any] = {"partner_id": str(world.partner_id), "notification_base_url": url}
    if horizon_days is not None:
        body["feed_horizon_days"] = horizon_days
    response = await world.client("manager").put(
        f"/v1/businesses/{world.business_id}/marketplaces/actions-center", json=body
    )
    assert response.status_code == 200, response.text


async def follow_ups(after: int) -> tuple[list[FollowUpJob], int]:
    """The relay's follow-ups of the outbox rows after ``after`` (all of them)."""
    async with db.connection() as conn:
        ids = [
            r["id"]
            for r in await conn.fetch("SELECT id FROM outbox WHERE id > $1 ORDER BY id", after)
        ]
    jobs: list[FollowUpJob] = []
    for outbox_id in ids:
        jobs += await handle_event(outbox_id, OUTBOX_HANDLERS) or []
    return jobs, max(ids, default=after)


async def availability_follow_ups(after: int) -> tuple[list[FollowUpJob], int]:
    """The availability ones among :func:`follow_ups`."""
    jobs, last = await follow_ups(after)
    return [j for j in jobs if j.function == AVAILABILITY_JOB], last


async def run_job(job: FollowUpJob, tries: int = 1) -> str:
    context = {"settings": Settings.from_env(), "job_try": tries}
    return await marketplace_availability(context, *job.args)


def is_open(body: dict[str, Any], service: UUID, staff: str, when: datetime) -> bool:
    """Whether the replace body offers ``when`` with ``staff`` for the service."""
    [group] = [g for g in body["extendedServiceAvailability"] if g["serviceId"] == str(service)]
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return any(
        s["startTime"] == stamp and s.get("resources", {}).get("staffId") == staff
        for s in group["availability"]
    )
