"""Recurring series through the API: all-or-nothing writes nothing on a conflict,
skip-conflicts writes what fits and reports the rest with alternatives."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from booking import db
from tests.support import World, at

WEEKS = 10


async def _count(sql: str, *args: Any) -> int:
    async with db.connection() as conn:
        value: int = await conn.fetchval(sql, *args)
    return value


def series_body(world: World, mode: str, **extra: Any) -> dict[str, Any]:
    return {
        "service_id": str(world.cut),
        "staff_id": str(world.staff[0]),
        "starts_at": at(7, 10).isoformat(),
        "rule": f"FREQ=WEEKLY;COUNT={WEEKS}",
        "mode": mode,
        "customer": {"name": "Paola Physio", "phone": "+393339990000", "locale": "it"},
        **extra,
    }


async def _blocker(world: World) -> dict[str, Any]:
    """Someone else's booking in week 4 at the series' time, with the same person."""
    response = await world.client().post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(7 + 21, 10), staff=world.staff[0]),
    )
    assert response.status_code == 201, response.text
    blocker: dict[str, Any] = response.json()
    return blocker


async def test_ten_weeks_all_or_nothing_with_one_conflict_writes_nothing(world: World) -> None:
    await _blocker(world)
    response = await world.client().post(
        f"/v1/businesses/{world.business_id}/series", json=series_body(world, "all_or_nothing")
    )
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["type"] == "/problems/series-conflict"
    outcomes = [o["outcome"] for o in problem["occurrences"]]
    assert outcomes == ["free"] * 3 + ["conflict"] + ["free"] * 6
    assert problem["occurrences"][3]["alternatives"]
    assert await _count("SELECT count(*) FROM booking") == 1  # the blocker only
    assert await _count("SELECT count(*) FROM booking_series") == 0
    assert await _count("SELECT count(*) FROM outbox WHERE topic = 'booking.created'") == 1


async def test_ten_weeks_skip_conflicts_writes_nine_and_reports_one(world: World) -> None:
    await _blocker(world)
    response = await world.client().post(
        f"/v1/businesses/{world.business_id}/series", json=series_body(world, "skip_conflicts")
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["booked"], body["conflicts"]) == (9, 1)
    conflict = body["occurrences"][3]
    assert conflict["outcome"] == "conflict"
    assert conflict["starts_at"].startswith(at(7 + 21, 10).date().isoformat())
    assert conflict["alternatives"]
    taken = (conflict["starts_at"], str(world.staff[0]))
    assert all((alt["starts_at"], alt["staff_id"]) != taken for alt in conflict["alternatives"])
    series_id = UUID(body["series_id"])
    assert (
        await _count(
            "SELECT count(*) FROM booking WHERE series_id = $1 AND status = 'confirmed'", series_id
        )
        == 9
    )
    codes = {o["reference_code"] for o in body["occurrences"] if o["outcome"] == "booked"}
    assert len(codes) == 9  # each occurrence is its own booking
    one = await world.client().get(f"/v1/bookings/{body['occurrences'][0]['booking_id']}")
    assert one.json()["series_id"] == str(series_id)
    assert await _count("SELECT count(*) FROM outbox WHERE topic = 'booking.created'") == 10


async def test_cancel_this_and_following(world: World) -> None:
    response = await world.client().post(
        f"/v1/businesses/{world.business_id}/series", json=series_body(world, "skip_conflicts")
    )
    occurrences = response.json()["occurrences"]
    sixth = occurrences[5]["booking_id"]
    cancelled = await world.client().post(
        f"/v1/bookings/{sixth}/series/cancel", json={"reason": "moving away"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert sorted(cancelled.json()["cancelled_booking_ids"]) == sorted(
        o["booking_id"] for o in occurrences[5:]
    )
    series_id = UUID(response.json()["series_id"])
    assert (
        await _count(
            "SELECT count(*) FROM booking WHERE series_id = $1 AND status = 'confirmed'", series_id
        )
        == 5
    )
    # Cancelling one occurrence alone is the booking's own cancel.
    one = await world.client().post(f"/v1/bookings/{occurrences[0]['booking_id']}/cancel", json={})
    assert one.status_code == 200
    assert (
        await _count(
            "SELECT count(*) FROM booking WHERE series_id = $1 AND status = 'confirmed'", series_id
        )
        == 4
    )


@pytest.mark.parametrize(
    ("name", "override", "status"),
    [
        ("never ends", {"rule": "FREQ=WEEKLY"}, 422),
        ("too many", {"rule": "FREQ=WEEKLY;COUNT=53"}, 422),
        ("too many by UNTIL", {"rule": "FREQ=DAILY;UNTIL=20401231T000000"}, 422),
        ("hourly", {"rule": "FREQ=HOURLY;COUNT=3"}, 422),
        ("garbage", {"rule": "FREQ=SOMETIMES;COUNT=2"}, 422),
        ("rule and dates", {"dates": [at(8, 10).isoformat()]}, 422),
        ("unknown mode", {"mode": "most"}, 400),
        ("no starts_at", {"starts_at": None}, 422),
    ],
)
async def test_bad_series_are_problems_and_write_nothing(
    world: World, name: str, override: dict[str, Any], status: int
) -> None:
    response = await world.client().post(
        f"/v1/businesses/{world.business_id}/series",
        json={**series_body(world, "skip_conflicts"), **override},
    )
    assert response.status_code == status, (name, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await _count("SELECT count(*) FROM booking") == 0
    assert await _count("SELECT count(*) FROM booking_series") == 0


async def test_a_list_of_dates(world: World) -> None:
    dates = [at(9, 11).isoformat(), at(8, 12).isoformat()]
    response = await world.client().post(
        f"/v1/businesses/{world.business_id}/series",
        json={
            **series_body(world, "all_or_nothing"),
            "rule": None,
            "starts_at": None,
            "dates": dates,
        },
    )
    assert response.status_code == 201, response.text
    assert [o["outcome"] for o in response.json()["occurrences"]] == ["booked", "booked"]
    assert response.json()["occurrences"][0]["starts_at"].startswith(at(8, 12).date().isoformat())
