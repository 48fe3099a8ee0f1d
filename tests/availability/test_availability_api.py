"""Availability through the API, in the business's zone, across both DST changes."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from booking import db
from tests.support import ROME, World, at

SPRING_2027 = date(2027, 3, 28)  # last Sunday of March: 02:00 -> 03:00
AUTUMN_2027 = date(2027, 10, 31)  # last Sunday of October: 03:00 -> 02:00


async def _night_shift(world: World) -> None:
    """Sara also works 00:00-06:00 on Sundays, so the night hours are bookable."""
    async with db.connection() as conn:
        await conn.execute(
            "INSERT INTO working_hours (business_id, staff_id, weekday, opens_at, closes_at) "
            "VALUES ($1, $2, 6, '00:00', '06:00')",
            world.business_id,
            world.staff[2],
        )


async def _slots(world: World, day: date, **params: Any) -> list[dict[str, Any]]:
    start = datetime.combine(day, time(0), tzinfo=ROME)
    response = await world.client("app").get(
        f"/v1/businesses/{world.business_id}/availability",
        params={
            "service_id": str(world.cut),
            "from": start.isoformat(),
            "to": (start + timedelta(days=1)).isoformat(),
            **params,
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["time_zone"] == "Europe/Rome"
    slots: list[dict[str, Any]] = response.json()["slots"]
    return slots


async def test_spring_forward_day_has_no_slots_in_the_missing_hour(world: World) -> None:
    await _night_shift(world)
    slots = await _slots(world, SPRING_2027, staff_id=str(world.staff[2]))
    starts = [s["starts_at"] for s in slots]
    night = [s for s in starts if s < "2027-03-28T07"]
    assert "2027-03-28T01:45:00+01:00" in night
    assert "2027-03-28T03:00:00+02:00" in night
    assert not any(s.startswith("2027-03-28T02:") for s in night)
    # 6 wall-clock hours that last 5 real ones, 15-minute steps, 30-minute service
    assert len(night) == 5 * 4 - 1
    day = [s for s in starts if s >= "2027-03-28T09"]
    assert day[0] == "2027-03-28T09:00:00+02:00"
    assert day[-1] == "2027-03-28T17:30:00+02:00"


async def test_fall_back_day_offers_the_repeated_hour_twice(world: World) -> None:
    await _night_shift(world)
    slots = await _slots(world, AUTUMN_2027, staff_id=str(world.staff[2]))
    starts = [s["starts_at"] for s in slots]
    assert "2027-10-31T02:00:00+02:00" in starts
    assert "2027-10-31T02:00:00+01:00" in starts
    night = [s for s in slots if s["starts_at"] < "2027-10-31T07"]
    assert len(night) == 7 * 4 - 1  # 6 wall-clock hours that last 7
    assert starts[-1] == "2027-10-31T17:30:00+01:00"
    booked = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(
            datetime.fromisoformat("2027-10-31T02:15:00+01:00"), staff=world.staff[2]
        ),
    )
    assert booked.status_code == 201, booked.text
    after = [s["starts_at"] for s in await _slots(world, AUTUMN_2027, staff_id=str(world.staff[2]))]
    assert "2027-10-31T02:15:00+02:00" in after  # the first 02:15 is still free
    assert "2027-10-31T02:15:00+01:00" not in after


async def test_slots_group_staff_and_respect_bookings_and_time_off(world: World) -> None:
    day = at(8, 0).date()
    first = await _slots(world, day)
    assert len(first[0]["staff_ids"]) == 3
    client = world.client("front_desk")
    made = await client.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(8, 10), staff=world.staff[0]),
    )
    assert made.status_code == 201
    async with db.connection() as conn:
        await conn.execute(
            "INSERT INTO time_off (business_id, staff_id, starts_at, ends_at, reason) "
            "VALUES ($1, $2, $3, $4, 'dentist')",
            world.business_id,
            world.staff[1],
            at(8, 9),
            at(8, 12),
        )
    slots = {s["starts_at"]: s["staff_ids"] for s in await _slots(world, day)}
    ten = at(8, 10).isoformat()
    assert slots[ten] == [str(world.staff[2])]
    # Cut has 10 minutes' cleanup: Giulia's 09:45 would run into her 10:00 booking.
    assert str(world.staff[0]) not in slots[at(8, 9, 45).isoformat()]
    time_off_booking = await client.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(8, 11), staff=world.staff[1]),
    )
    assert time_off_booking.status_code == 409
