"""Change this occurrence and the following: one transaction, each occurrence through
the one move (policy, allocation constraint, change SMS), nothing changed on a conflict."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from booking import db
from booking.series.changes import shifted
from tests.series.test_series import WEEKS, series_body
from tests.support import World, at

ROME = ZoneInfo("Europe/Rome")


async def _series(world: World) -> list[dict[str, Any]]:
    response = await world.client().post(
        f"/v1/businesses/{world.business_id}/series", json=series_body(world, "all_or_nothing")
    )
    assert response.status_code == 201, response.text
    occurrences: list[dict[str, Any]] = response.json()["occurrences"]
    return occurrences


async def _rows(world: World) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT id::text AS id, reference_code, starts_at, version, staff_id FROM booking "
            "WHERE business_id = $1 AND series_id IS NOT NULL ORDER BY starts_at",
            world.business_id,
        )
    return [dict(r) for r in rows]


async def test_the_third_and_following_move_to_eleven(world: World) -> None:
    occurrences = await _series(world)
    third = occurrences[2]
    response = await world.client().post(
        f"/v1/bookings/{third['booking_id']}/series/change",
        json={"starts_at": at(7 + 14, 11).isoformat()},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["moved"] == WEEKS - 2
    assert [o["booking_id"] for o in body["occurrences"]] == [
        o["booking_id"] for o in occurrences[2:]
    ]
    rows = await _rows(world)
    local = [r["starts_at"].astimezone(ROME) for r in rows]
    assert [t.hour for t in local] == [10, 10] + [11] * (WEEKS - 2)
    assert [t.date() for t in local] == [
        datetime.fromisoformat(o["starts_at"]).date() for o in occurrences
    ]  # same days
    assert [r["reference_code"] for r in rows] == [o["reference_code"] for o in occurrences]
    assert [r["version"] for r in rows] == [1, 1] + [2] * (WEEKS - 2)
    async with db.connection() as conn:
        changed = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE topic = 'booking.changed' AND business_id = $1",
            world.business_id,
        )
    assert changed == WEEKS - 2  # each customer-facing occurrence gets its change message


async def test_a_conflict_in_week_six_changes_nothing(world: World) -> None:
    occurrences = await _series(world)
    blocker = await world.client().post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(7 + 35, 11), staff=world.staff[0]),
    )
    assert blocker.status_code == 201, blocker.text
    before = await _rows(world)
    response = await world.client().post(
        f"/v1/bookings/{occurrences[2]['booking_id']}/series/change",
        json={"starts_at": at(7 + 14, 11).isoformat(), "staff_id": str(world.staff[0])},
    )
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["type"] == "/problems/series-conflict"
    outcomes = [o["outcome"] for o in problem["occurrences"]]
    assert outcomes == ["free"] * 3 + ["conflict"] + ["free"] * 4
    conflict = problem["occurrences"][3]
    assert conflict["booking_id"] == occurrences[5]["booking_id"]
    assert conflict["alternatives"]
    assert await _rows(world) == before  # not one occurrence moved


async def test_a_shift_by_a_whole_week_does_not_collide_with_itself(world: World) -> None:
    occurrences = await _series(world)
    response = await world.client().post(
        f"/v1/bookings/{occurrences[0]['booking_id']}/series/change",
        json={"starts_at": at(7 + 7, 10).isoformat(), "staff_id": str(world.staff[0])},
    )
    assert response.status_code == 200, response.text
    rows = await _rows(world)
    first = datetime.fromisoformat(occurrences[0]["starts_at"]).date()
    assert [(r["starts_at"].astimezone(ROME).date() - first).days for r in rows] == [
        7 * (i + 1) for i in range(WEEKS)
    ]


async def test_not_a_series_another_tenant_and_bad_input(world: World) -> None:
    single = await world.client().post(
        f"/v1/businesses/{world.business_id}/bookings", json=world.booking_body(at(8, 15))
    )
    one = await world.client().post(
        f"/v1/bookings/{single.json()['id']}/series/change",
        json={"starts_at": at(8, 16).isoformat()},
    )
    assert one.status_code == 422, one.text
    occurrences = await _series(world)
    url = f"/v1/bookings/{occurrences[0]['booking_id']}/series/change"
    other = await world.client("other_staff").post(url, json={"starts_at": at(8, 16).isoformat()})
    assert other.status_code == 404
    for bad in ({}, {"starts_at": "tomorrow"}, {"starts_at": at(8, 16).isoformat(), "x": 1}):
        response = await world.client().post(url, json=bad)
        assert 400 <= response.status_code < 500, (bad, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    stale = await world.client().post(
        url, json={"starts_at": at(8, 16).isoformat()}, headers={"If-Match": '"7"'}
    )
    assert stale.status_code == 412, stale.text
    assert all(r["version"] == 1 for r in await _rows(world))


def test_a_shift_keeps_the_wall_clock_across_daylight_saving() -> None:
    # Weekly on Tuesdays 10:00 Rome; Europe/Rome goes to summer time on 2027-03-28.
    this_old = datetime(2027, 3, 16, 10, 0, tzinfo=ROME).astimezone(UTC)
    this_new = datetime(2027, 3, 17, 11, 30, tzinfo=ROME).astimezone(UTC)  # a day later, 11:30
    later = datetime(2027, 3, 30, 10, 0, tzinfo=ROME).astimezone(UTC)  # after the change
    moved = shifted(later, this_old, this_new, ROME).astimezone(ROME)
    assert (moved.date().isoformat(), moved.hour, moved.minute) == ("2027-03-31", 11, 30)
    assert moved.utcoffset() == datetime(2027, 3, 31, 12, tzinfo=ROME).utcoffset()
