"""Busy times in from a real CalDAV server (Radicale) and ICS URLs: the blocks are the
database's, and a sync over a booking goes through the lost-slot recovery."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import asyncpg
import pytest

from booking import db
from tests.calendars.helpers import calendar, connect, event, radicale_calendar, save_event, sync
from tests.calendars.servers import IcsServer, Served
from tests.guarantee.helpers import book, drain, fetch, fetchval, sms
from tests.notifications.fixtures import Pipeline
from tests.support import World, at


async def _blocks(connection_id: str) -> list[tuple[object, object]]:
    rows = await fetch(
        "SELECT starts_at, ends_at FROM time_off WHERE calendar_connection_id = $1 "
        "ORDER BY starts_at",
        UUID(connection_id),
    )
    return [(r["starts_at"], r["ends_at"]) for r in rows]


async def test_weekly_event_with_exdate_and_moved_occurrence_blocks_exactly_those_times(
    world: World, radicale: str
) -> None:
    url, user = await radicale_calendar(radicale)
    hour = timedelta(hours=1)
    weekly = event(
        "gym@example.org",
        at(7, 10),
        at(7, 11),
        rrule={"freq": "weekly", "count": 5},
        exdate=[at(14, 10)],
    )
    moved = event("gym@example.org", at(21, 15), at(21, 16), recurrence_id=at(21, 10))
    await save_event(url, user, calendar(weekly, moved))

    response = await connect(
        world, world.staff[0], kind="caldav", url=url, username=user, password="x"
    )
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["sync"]["status"] == "synced"
    assert answer["sync"]["added"] == 4
    assert answer["connection"]["last_error"] is None
    assert answer["connection"]["busy_blocks"] == 4
    expected = [(at(d, h), at(d, h) + hour) for d, h in ((7, 10), (21, 15), (28, 10), (35, 10))]
    assert await _blocks(answer["connection"]["id"]) == expected

    client = world.client("front_desk")
    path = f"/v1/businesses/{world.business_id}/bookings"
    for starts, _ in expected:
        refused = await client.post(path, json=world.booking_body(starts, staff=world.staff[0]))
        assert refused.status_code == 409, refused.text
        assert refused.json()["alternatives"], refused.text
    # The excluded date and the moved occurrence's original time are free.
    for starts in (at(14, 10), at(21, 10)):
        made = await client.post(path, json=world.booking_body(starts, staff=world.staff[0]))
        assert made.status_code == 201, made.text

    async with db.connection() as conn:
        with pytest.raises(asyncpg.exceptions.ExclusionViolationError) as caught:
            await conn.execute(
                """
                INSERT INTO booking (business_id, staff_id, service_id, status, channel,
                    reference_code, starts_at, ends_at, blocked_from, blocked_until,
                    hold_expires_at)
                VALUES ($1, $2, $3, 'held', 'system', 'CALRAW', $4::timestamptz,
                        $4 + interval '30 minutes', $4, $4 + interval '30 minutes',
                        now() + interval '1 hour')
                """,
                world.business_id,
                world.staff[0],
                world.cut,
                at(28, 10, 15),
            )
    assert caught.value.sqlstate == "23P01"

    # A second sync of the same calendar changes nothing (the collection's sync-token).
    again = await sync(world, world.staff[0], answer["connection"]["id"])
    assert (again["sync"]["added"], again["sync"]["removed"]) == (0, 0)
    assert await _blocks(answer["connection"]["id"]) == expected


async def test_an_outside_event_over_a_confirmed_booking_makes_one_offer(
    world: World, pipeline: Pipeline, ics_server: IcsServer
) -> None:
    booking = await book(world, 3, 10, phone="+393330000077")
    await drain(pipeline)  # the confirmation goes out first
    url = ics_server.put("giulia.ics", Served(calendar(event("x@y", at(3, 9, 30), at(3, 11)))))

    response = await connect(world, world.staff[0], kind="ics", url=url)

    assert response.status_code == 201, response.text
    report = response.json()["sync"]
    assert report["conflicts"] == [booking["id"]]
    assert len(report["offer_ids"]) == 1
    row = (await fetch("SELECT * FROM booking WHERE id = $1", UUID(booking["id"])))[0]
    assert row["status"] == "confirmed"  # never deleted, never cancelled
    assert row["at_risk_since"] is not None
    assert (
        await fetchval(
            "SELECT count(*) FROM reschedule_option o JOIN booking h ON h.id = o.hold_id "
            "WHERE o.offer_id = $1 AND h.status = 'held'",
            UUID(report["offer_ids"][0]),
        )
        == 3
    )
    risk = await world.client("front_desk").get(
        f"/v1/businesses/{world.business_id}/front-desk/risk",
        params={"day": at(3, 10).date().isoformat()},
    )
    assert [b["booking"]["id"] for b in risk.json()["at_risk"]] == [booking["id"]]

    # Synced again (same body, then forced): no second offer, no second SMS.
    connection_id = response.json()["connection"]["id"]
    assert (await sync(world, world.staff[0], connection_id))["sync"]["conflicts"] == []
    await drain(pipeline)
    offers = await sms("offer_lost_slot")
    assert len(offers) == 1
    assert offers[0]["to_phone"] == "+393330000077"
    assert offers[0]["status"] == "sent"


async def test_vanished_events_give_the_time_back_and_changes_move_blocks(
    world: World, ics_server: IcsServer
) -> None:
    one = event("one@y", at(4, 10), at(4, 11))
    two = event("two@y", at(5, 10), at(5, 11))
    url = ics_server.put("c.ics", Served(calendar(one, two)))
    answer = (await connect(world, world.staff[0], kind="ics", url=url)).json()
    connection_id = answer["connection"]["id"]
    assert len(await _blocks(connection_id)) == 2

    # Unchanged body: the second request carries If-None-Match and gets a 304.
    await sync(world, world.staff[0], connection_id)
    ics_server.paths["c.ics"] = Served(calendar(event("two@y", at(5, 14), at(5, 15))))
    report = (await sync(world, world.staff[0], connection_id))["sync"]
    assert (report["added"], report["removed"]) == (1, 2)
    assert await _blocks(connection_id) == [(at(5, 14), at(5, 15))]
    made = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(4, 10), staff=world.staff[0]),
    )
    assert made.status_code == 201, made.text

    removed = await world.client("manager").delete(
        f"/v1/businesses/{world.business_id}/staff/{world.staff[0]}/calendars/{connection_id}"
    )
    assert removed.status_code == 204
    assert await _blocks(connection_id) == []
    assert await fetchval("SELECT count(*) FROM allocation WHERE kind = 'block'") == 0
