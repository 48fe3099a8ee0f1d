"""Availability real-time updates for schedule changes: time off, busy time from a staff
member's calendar (added, removed, disconnected), working hours, a closed day, a
service's staff list, a staff member taken off and put back on the rota each write a
``schedule.changed`` outbox event in their transaction; for a listed business the relay
makes one replace job per partner, and the fake Maps Booking server then holds exactly
what our search answers for the window."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from booking import db
from booking.access.principal import Principal
from booking.catalog import hours
from booking.catalog import service as catalog
from booking.catalog.schemas import DayHours, StaffPatch, TimeRange, WeekHours
from booking.marketplace.inventory import AVAILABILITY_JOB
from booking.marketplace.listing import service_availability
from booking.outbox.dispatch import FollowUpJob
from booking.schedule_changes import SCHEDULE_CHANGED
from tests.calendars.helpers import calendar, event
from tests.calendars.servers import IcsServer, Served
from tests.marketplace.inventory_fake import (
    FakeInventory,
    availability_follow_ups,
    follow_ups,
    is_open,
    list_business,
    run_job,
)
from tests.support import World, add_cabins, at, days_ahead

ADMIN = Principal(kind="admin", id="test")


def _window(job: FollowUpJob) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(job.args[2]), datetime.fromisoformat(job.args[3])


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _only_availability_job(after: int) -> tuple[FollowUpJob, int]:
    """The one follow-up of the rows after ``after``: the availability replace (a schedule
    event sends no SMS, no partner webhook, no calendar write-back)."""
    jobs, last = await follow_ups(after)
    [job] = jobs
    assert job.function == AVAILABILITY_JOB
    return job, last


async def _sent(inventory: FakeInventory, after: int) -> tuple[FollowUpJob, dict[str, Any], int]:
    """The availability job of the rows after ``after``, run: and the body it sent."""
    job, last = await _only_availability_job(after)
    await run_job(job)
    return job, inventory.calls[-1][1], last


async def _assert_is_the_search(body: dict[str, Any]) -> None:
    """Every group holds what the availability search (the feed's and
    BatchAvailabilityLookup's) answers for its window now; slots closer than two hours are
    left out of the comparison (the minimum notice moves them with the clock)."""
    cutoff = _stamp(datetime.now(UTC) + timedelta(hours=2))
    for group in body["extendedServiceAvailability"]:
        start = datetime.fromisoformat(group["startTimeRestrict"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(group["endTimeRestrict"].replace("Z", "+00:00"))
        expected = await service_availability(
            UUID(group["merchantId"]), UUID(group["serviceId"]), start, end
        )
        sent = {
            (s["startTime"], s["resources"]["staffId"], s["duration"], s["spotsOpen"])
            for s in group["availability"]
        }
        searched = {
            (
                _stamp(datetime.fromtimestamp(e["start_sec"], UTC)),
                e["resources"]["staff_id"],
                f"{e['duration_sec']}s",
                "1",
            )
            for e in expected
        }
        assert len(group["availability"]) == len(sent)
        assert {s for s in sent if s[0] >= cutoff} == {s for s in searched if s[0] >= cutoff}
        assert any(s[0] >= cutoff for s in searched)  # an empty answer would prove nothing


async def _schedule_events() -> list[asyncpg.Record]:
    async with db.connection() as conn:
        return list(
            await conn.fetch(
                "SELECT business_id, payload FROM outbox WHERE topic = $1 ORDER BY id",
                SCHEDULE_CHANGED,
            )
        )


async def test_time_off_closes_its_slots_and_a_rerun_sends_the_current_truth(
    world: World, inventory: FakeInventory
) -> None:
    await list_business(world, inventory.url, horizon_days=7)
    _, last = await follow_ups(0)
    giulia, marco = str(world.staff[0]), str(world.staff[1])
    added = await world.client("manager").post(
        f"/v1/businesses/{world.business_id}/staff/{giulia}/time-off",
        json={"starts_at": at(2, 10).isoformat(), "ends_at": at(2, 12).isoformat()},
    )
    assert added.status_code == 201, added.text

    job, last = await _only_availability_job(last)
    assert job.args[:2] == (str(world.business_id), str(world.partner_id))
    # The time off, a day either side (every slot that can reach into it).
    assert _window(job) == (at(2, 10) - timedelta(days=1), at(2, 12) + timedelta(days=1))
    await run_job(job)
    [(partner, body)] = inventory.calls
    assert partner == str(world.partner_id)
    assert not is_open(body, world.cut, giulia, at(2, 10))
    assert not is_open(body, world.cut, giulia, at(2, 11, 30))
    assert is_open(body, world.cut, marco, at(2, 10))
    assert is_open(body, world.cut, giulia, at(3, 10))  # the day after is untouched
    await _assert_is_the_search(body)

    # A booking since: the same job run again sends what is true now, not what was.
    made = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(2, 15), staff=world.staff[1]),
    )
    assert made.status_code == 201, made.text
    await run_job(job)
    again = inventory.calls[-1][1]
    assert is_open(body, world.cut, marco, at(2, 15))
    assert not is_open(again, world.cut, marco, at(2, 15))
    assert not is_open(again, world.cut, giulia, at(2, 10))
    await _assert_is_the_search(again)


async def test_busy_time_synced_in_closes_slots_and_its_removal_opens_them_again(
    world: World, inventory: FakeInventory, ics_server: IcsServer
) -> None:
    await list_business(world, inventory.url, horizon_days=7)
    _, last = await follow_ups(0)
    giulia = str(world.staff[0])
    busy = Served(calendar(event("dentist@example.org", at(3, 10), at(3, 12))))
    url = ics_server.put("giulia.ics", busy)
    base = f"/v1/businesses/{world.business_id}/staff/{giulia}/calendars"
    connected = await world.client("manager").post(base, json={"kind": "ics", "url": url})
    assert connected.status_code == 201, connected.text
    assert connected.json()["sync"]["added"] == 1
    connection = connected.json()["connection"]["id"]

    job, last = await _only_availability_job(last)
    assert _window(job) == (at(3, 10) - timedelta(days=1), at(3, 12) + timedelta(days=1))
    await run_job(job)
    closed = inventory.calls[-1][1]
    assert not is_open(closed, world.cut, giulia, at(3, 10))
    await _assert_is_the_search(closed)

    # The event is gone from the calendar: the sync removes the block, the slots come back.
    ics_server.paths["giulia.ics"] = Served(
        calendar(event("later@example.org", at(4, 16), at(4, 17)))
    )
    synced = await world.client("manager").post(f"{base}/{connection}/sync")
    assert synced.status_code == 200, synced.text
    assert (synced.json()["sync"]["added"], synced.json()["sync"]["removed"]) == (1, 1)
    job, last = await _only_availability_job(last)
    # One event for the sync: the span of what it removed and what it added.
    assert _window(job) == (at(3, 10) - timedelta(days=1), at(4, 17) + timedelta(days=1))
    await run_job(job)
    reopened = inventory.calls[-1][1]
    assert is_open(reopened, world.cut, giulia, at(3, 10))
    assert not is_open(reopened, world.cut, giulia, at(4, 16))
    await _assert_is_the_search(reopened)

    # Disconnecting the calendar frees the busy time it brought.
    removed = await world.client("manager").delete(f"{base}/{connection}")
    assert removed.status_code == 204, removed.text
    job, last = await _only_availability_job(last)
    assert _window(job) == (at(4, 16) - timedelta(days=1), at(4, 17) + timedelta(days=1))
    await run_job(job)
    freed = inventory.calls[-1][1]
    assert is_open(freed, world.cut, giulia, at(4, 16))
    await _assert_is_the_search(freed)


async def test_new_working_hours_replace_the_whole_horizon_a_week_per_call(
    world: World, inventory: FakeInventory
) -> None:
    await list_business(world, inventory.url, horizon_days=10)
    _, last = await follow_ups(0)
    giulia = str(world.staff[0])
    changed = await world.client("manager").patch(
        f"/v1/businesses/{world.business_id}/staff/{giulia}/hours",
        json={
            "days": [
                {
                    "weekday": days_ahead(2).weekday(),
                    "ranges": [{"opens_at": "14:00", "closes_at": "18:00"}],
                }
            ]
        },
    )
    assert changed.status_code == 200, changed.text

    job, last = await _only_availability_job(last)
    start, end = _window(job)
    assert end - start == timedelta(days=10)  # the listing's feed horizon, no more
    assert abs(start - datetime.now(UTC)) < timedelta(minutes=1)
    assert (await run_job(job)).endswith(" in 2 calls")
    first, second = inventory.calls
    # Two calls, a week and the rest, back to back: together the whole window.
    windows = [
        {
            (g["startTimeRestrict"], g["endTimeRestrict"])
            for g in body["extendedServiceAvailability"]
        }
        for _, body in (first, second)
    ]
    [(first_from, first_to)], [(second_from, second_to)] = windows
    assert (
        first_to
        == second_from
        == _stamp(datetime.fromisoformat(first_from.replace("Z", "+00:00")) + timedelta(days=7))
    )
    assert second_to == _stamp(end)
    body = first[1]
    assert not is_open(body, world.cut, giulia, at(2, 10))
    assert is_open(body, world.cut, giulia, at(2, 15))
    assert is_open(body, world.cut, giulia, at(1, 10))  # other weekdays keep their hours
    assert not is_open(second[1], world.cut, giulia, at(9, 10))  # that weekday a week on
    assert is_open(second[1], world.cut, giulia, at(9, 15))
    await _assert_is_the_search(body)
    await _assert_is_the_search(second[1])


async def test_a_staff_member_taken_off_the_rota_loses_every_slot_and_gets_them_back(
    world: World, inventory: FakeInventory
) -> None:
    await list_business(world, inventory.url, horizon_days=3)
    _, last = await follow_ups(0)
    giulia, marco = str(world.staff[0]), str(world.staff[1])
    path = f"/v1/businesses/{world.business_id}/staff/{giulia}"
    off = await world.client("manager").patch(path, json={"active": False})
    assert off.status_code == 200, off.text

    job, last = await _only_availability_job(last)
    assert _window(job)[1] - _window(job)[0] == timedelta(days=3)
    await run_job(job)
    body = inventory.calls[-1][1]
    staffed = {
        s["resources"]["staffId"]
        for g in body["extendedServiceAvailability"]
        for s in g["availability"]
    }
    assert giulia not in staffed
    assert marco in staffed
    await _assert_is_the_search(body)

    back = await world.client("manager").patch(path, json={"active": True})
    assert back.status_code == 200, back.text
    job, body, last = await _sent(inventory, last)
    assert is_open(body, world.cut, giulia, at(2, 10))
    await _assert_is_the_search(body)


async def test_a_closed_day_and_a_service_s_staff_list_are_sent_a_rename_is_not(
    world: World, inventory: FakeInventory
) -> None:
    await list_business(world, inventory.url, horizon_days=7)
    _, last = await follow_ups(0)
    giulia, marco = str(world.staff[0]), str(world.staff[1])
    manager = world.client("manager")
    day = days_ahead(2)
    path = f"/v1/businesses/{world.business_id}/staff/{giulia}/exceptions/{day.isoformat()}"
    closed = await manager.put(path, json={"closed": True, "note": "inventory"})
    assert closed.status_code in (200, 201), closed.text
    job, last = await _only_availability_job(last)
    # That day in the business's zone, a day either side.
    assert _window(job) == (at(2, 0) - timedelta(days=1), at(3, 0) + timedelta(days=1))
    await run_job(job)
    body = inventory.calls[-1][1]
    assert not is_open(body, world.cut, giulia, at(2, 10))
    assert is_open(body, world.cut, giulia, at(3, 10))
    await _assert_is_the_search(body)

    reopened = await manager.delete(path)
    assert reopened.status_code in (200, 204), reopened.text
    job, last = await _only_availability_job(last)
    await run_job(job)
    assert is_open(inventory.calls[-1][1], world.cut, giulia, at(2, 10))

    # Colour without Marco: his Colour slots close, his Cut slots stay.
    colour = await manager.patch(
        f"/v1/businesses/{world.business_id}/services/{world.colour}",
        json={"staff_ids": [giulia]},
    )
    assert colour.status_code == 200, colour.text
    job, body, last = await _sent(inventory, last)
    assert not is_open(body, world.colour, marco, at(2, 10))
    assert is_open(body, world.colour, giulia, at(2, 10))
    assert is_open(body, world.cut, marco, at(2, 10))
    await _assert_is_the_search(body)

    # A new name or price opens and closes nothing: no event, no call.
    renamed = await manager.patch(
        f"/v1/businesses/{world.business_id}/staff/{giulia}", json={"name": "Giulia R."}
    )
    assert renamed.status_code == 200, renamed.text
    priced = await manager.patch(
        f"/v1/businesses/{world.business_id}/services/{world.cut}", json={"price_cents": 4200}
    )
    assert priced.status_code == 200, priced.text
    assert (await availability_follow_ups(last))[0] == []


async def test_an_unlisted_business_or_a_change_past_the_horizon_sends_nothing(
    world: World, inventory: FakeInventory
) -> None:
    _, last = await follow_ups(0)
    time_off = f"/v1/businesses/{world.business_id}/staff/{world.staff[0]}/time-off"
    manager = world.client("manager")
    window = {"starts_at": at(2, 10).isoformat(), "ends_at": at(2, 12).isoformat()}
    assert (await manager.post(time_off, json=window)).status_code == 201
    off = await manager.patch(
        f"/v1/businesses/{world.business_id}/staff/{world.staff[1]}", json={"active": False}
    )
    assert off.status_code == 200, off.text
    assert len(await _schedule_events()) == 2  # the events are there ...
    jobs, last = await availability_follow_ups(last)
    assert jobs == []  # ... but no partner to tell

    await list_business(world, inventory.url, horizon_days=3)
    _, last = await follow_ups(last)
    far = {"starts_at": at(10, 10).isoformat(), "ends_at": at(10, 12).isoformat()}
    assert (await manager.post(time_off, json=far)).status_code == 201
    jobs, last = await availability_follow_ups(last)
    assert jobs == []  # beyond the 3 days the feed covers
    assert inventory.calls == []


def _group(body: dict[str, Any], service: UUID) -> dict[str, Any]:
    [group] = [g for g in body["extendedServiceAvailability"] if g["serviceId"] == str(service)]
    return group


async def test_a_service_deactivated_closes_all_its_slots_and_reactivated_opens_them(
    world: World, inventory: FakeInventory
) -> None:
    await list_business(world, inventory.url, horizon_days=3)
    _, last = await follow_ups(0)
    giulia = str(world.staff[0])
    path = f"/v1/businesses/{world.business_id}/services/{world.colour}"
    manager = world.client("manager")
    off = await manager.patch(path, json={"active": False})
    assert off.status_code == 200, off.text

    [event] = [e for e in await _schedule_events() if '"service_deactivated"' in e["payload"]]
    closing, last = await _only_availability_job(last)
    assert closing.args[4] == [str(world.colour)]  # the job names the service it closes
    assert _window(closing)[1] - _window(closing)[0] == timedelta(days=3)
    await run_job(closing)
    body = inventory.calls[-1][1]
    colour = _group(body, world.colour)  # sent, with nothing open: the marketplace drops it
    assert colour["availability"] == []
    assert colour["endTimeRestrict"] == _stamp(_window(closing)[1])  # over the whole window
    assert is_open(body, world.cut, giulia, at(2, 10))  # the others are untouched
    await _assert_is_the_search({"extendedServiceAvailability": [_group(body, world.cut)]})

    back = await manager.patch(path, json={"active": True})
    assert back.status_code == 200, back.text
    opening, last = await _only_availability_job(last)
    assert len(opening.args) == 4  # nothing to close
    await run_job(opening)
    assert is_open(inventory.calls[-1][1], world.colour, giulia, at(2, 10))
    await _assert_is_the_search(inventory.calls[-1][1])
    # The deactivation's job run late (a retry): the service is active again, so it goes
    # with its slots, the truth now, not an empty list.
    await run_job(closing)
    assert is_open(inventory.calls[-1][1], world.colour, giulia, at(2, 10))
    assert event["business_id"] == world.business_id


async def test_a_cabin_deactivated_closes_the_slots_of_the_services_that_need_it(
    world: World, inventory: FakeInventory
) -> None:
    manager = world.client("manager")
    (cabin,) = await add_cabins(world, 1)
    await list_business(world, inventory.url, horizon_days=3)
    _, last = await follow_ups(0)
    giulia = str(world.staff[0])

    off = await manager.patch(
        f"/v1/businesses/{world.business_id}/resources/{cabin}",
        json={"active": False},
    )
    assert off.status_code == 200, off.text
    _, body, last = await _sent(inventory, last)
    assert _group(body, world.cut)["availability"] == []  # no cabin left: no cut at all
    assert is_open(body, world.colour, giulia, at(2, 10))  # colour needs none

    on = await manager.patch(
        f"/v1/businesses/{world.business_id}/resources/{cabin}",
        json={"active": True},
    )
    assert on.status_code == 200, on.text
    _, body, last = await _sent(inventory, last)
    assert is_open(body, world.cut, giulia, at(2, 10))
    await _assert_is_the_search(body)


async def test_a_new_time_zone_moves_every_slot_of_the_horizon(
    world: World, inventory: FakeInventory
) -> None:
    await list_business(world, inventory.url, horizon_days=3)
    _, last = await follow_ups(0)
    giulia = str(world.staff[0])
    moved = await world.client("admin").patch(
        f"/v1/businesses/{world.business_id}", json={"time_zone": "America/New_York"}
    )
    assert moved.status_code == 200, moved.text
    job, last = await _only_availability_job(last)
    assert _window(job)[1] - _window(job)[0] == timedelta(days=3)  # the whole horizon
    await run_job(job)
    body = inventory.calls[-1][1]
    # at() is Rome's wall clock: 10:00 in Rome is 04:00 in New York, before opening; the
    # same day's 17:00 in Rome is 11:00 there, open.
    assert not is_open(body, world.cut, giulia, at(2, 10))
    assert is_open(body, world.cut, giulia, at(2, 17))
    await _assert_is_the_search(body)


@pytest.fixture
async def refused_audit() -> AsyncIterator[None]:
    """Every catalog audit row refused by the database: the change's last write fails."""
    async with db.connection() as conn:
        await conn.execute(
            "CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$"
        )
        await conn.execute(
            "CREATE TRIGGER test_refuse_audit BEFORE INSERT ON catalog_audit "
            "FOR EACH ROW EXECUTE FUNCTION test_refuse_audit()"
        )
    try:
        yield
    finally:
        async with db.connection() as conn:
            await conn.execute("DROP TRIGGER test_refuse_audit ON catalog_audit")
            await conn.execute("DROP FUNCTION test_refuse_audit()")


async def test_a_change_that_fails_writes_no_event(world: World, refused_audit: None) -> None:
    giulia = world.staff[0]
    monday = WeekHours(days=[DayHours(weekday=0, ranges=[TimeRange("14:00", "18:00")])])
    with pytest.raises(asyncpg.PostgresError, match="audit refused"):
        await hours.set_hours(ADMIN, world.business_id, giulia, monday, None, whole_week=False)
    with pytest.raises(asyncpg.PostgresError, match="audit refused"):
        # Deactivation runs the guarantee's own transaction inside the catalog's.
        await catalog.patch_staff(ADMIN, world.business_id, giulia, StaffPatch(active=False), None)

    assert await _schedule_events() == []
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT active FROM staff WHERE id = $1", giulia)
        assert [
            (str(r["opens_at"]), str(r["closes_at"]))
            for r in await conn.fetch(
                "SELECT opens_at, closes_at FROM working_hours WHERE staff_id = $1 AND weekday = 0",
                giulia,
            )
        ] == [("09:00:00", "18:00:00")]
