"""Write-back to a real CalDAV server (Radicale), driven by the outbox: a worker process
SIGKILLed in the middle leaves, after a restart, each booking in the calendar exactly
once, in its latest version; a cancelled one not at all."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from uuid import UUID

import icalendar
from arq.connections import ArqRedis

from tests.calendars.helpers import _client, connect, radicale_calendar
from tests.guarantee.helpers import book, fetchval
from tests.support import ROOT, World, at

BOOKINGS = 40


def _start_worker(log_name: str) -> subprocess.Popen[bytes]:
    log = (ROOT / ".local" / log_name).open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.drill_worker", "--job-timeout", "3", "--lease", "4"],
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def _wait(what: str, check: Callable[[], Awaitable[bool]], within: float = 90) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _events_in(url: str, user: str) -> list[icalendar.Component]:
    _, cal = _client(url, user)
    found: list[icalendar.Component] = []
    for obj in cal.events():
        found.extend(icalendar.Calendar.from_ical(obj.data).walk("VEVENT"))
    return found


async def test_worker_killed_mid_write_back_leaves_each_booking_exactly_once(
    world: World, radicale: str, redis: ArqRedis
) -> None:
    url, user = await radicale_calendar(radicale)
    made = await connect(
        world, world.staff[0], kind="caldav", url=url, username=user, password="x", write_back=True
    )
    assert made.status_code == 201, made.text
    bookings = [await book(world, 2 + i // 8, 9 + i % 8) for i in range(BOOKINGS)]
    desk = world.client("front_desk")
    cancelled, moved = bookings[0], bookings[1]
    assert (await desk.post(f"/v1/bookings/{cancelled['id']}/cancel", json={})).status_code == 200
    changed = await desk.patch(
        f"/v1/bookings/{moved['id']}", json={"starts_at": at(9, 17).isoformat()}
    )
    assert changed.status_code == 200, changed.text
    expected = {f"{b['id']}@booking" for b in bookings if b is not cancelled}

    async def written() -> int:
        count: int = await fetchval("SELECT count(*) FROM calendar_written")
        return count

    first = _start_worker("test-calendar-worker-1.log")
    try:
        await _wait("the first write-backs", lambda: _at_least(written, 3))
    finally:
        first.kill()  # SIGKILL: no shutdown, jobs in flight stay "in progress"
        first.wait(timeout=10)
    at_kill = await written()
    assert at_kill < len(expected), "the worker finished before it was killed"

    second = _start_worker("test-calendar-worker-2.log")
    try:
        await _wait("every write-back after the restart", lambda: _at_least(written, len(expected)))
        await _wait(
            "the outbox handled",
            lambda: _none(
                "SELECT count(*) FROM outbox WHERE handled_at IS NULL AND topic LIKE 'booking.%'"
            ),
        )
        await asyncio.sleep(1.0)  # a duplicate from a rerun would land now
    finally:
        second.terminate()
        second.wait(timeout=20)

    events = await asyncio.to_thread(_events_in, url, user)
    uids = [str(e["uid"]) for e in events]
    assert sorted(uids) == sorted(expected)  # each exactly once, the cancelled one gone
    moved_event = next(e for e in events if str(e["uid"]) == f"{moved['id']}@booking")
    assert moved_event.decoded("dtstart") == at(9, 17)
    latest = await fetchval("SELECT version FROM booking WHERE id = $1", UUID(moved["id"]))
    assert latest >= changed.json()["version"]
    assert moved_event.decoded("sequence") == latest
    assert str(moved_event["summary"]) == "Anna - Cut"
    assert await written() == len(expected)


async def _at_least(count: Callable[[], Awaitable[int]], wanted: int) -> bool:
    return await count() >= wanted


async def _none(sql: str) -> bool:
    remaining: int = await fetchval(sql)
    return remaining == 0
