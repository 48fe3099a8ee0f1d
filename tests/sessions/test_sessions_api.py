"""Sessions through the API: they take their teacher's time, cancelling and moving
seats, listing the seats left, and bad input that writes nothing."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from booking import db
from tests.sessions.support import book, group_service, schedule, seat_body, seats_in_sql
from tests.support import World, at


async def _count(sql: str, *args: Any) -> int:
    async with db.connection() as conn:
        value: int = await conn.fetchval(sql, *args)
    return value


async def test_a_session_takes_its_teachers_time(world: World) -> None:
    service_id = await group_service(world)
    await schedule(world, service_id, at(6, 10))
    one_to_one = await world.client().post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(6, 10, 30), staff=world.staff[0]),
    )
    assert one_to_one.status_code == 409, one_to_one.text
    clash = await world.client().post(
        f"/v1/businesses/{world.business_id}/sessions",
        json={
            "service_id": str(service_id),
            "starts_at": at(6, 10, 45).isoformat(),
            "staff_id": str(world.staff[0]),
        },
    )
    assert clash.status_code == 409
    assert clash.json()["type"] == "/problems/slot-taken"


async def test_listing_shows_seats_left_and_hides_full_sessions(world: World) -> None:
    service_id = await group_service(world, capacity=2)
    full = await schedule(world, service_id, at(6, 10))
    open_one = await schedule(world, service_id, at(7, 10))
    assert (await book(world.client(), world, full["id"], 1, seats=2)).status_code == 201
    listed = await world.client("partner").get(
        f"/v1/businesses/{world.business_id}/sessions",
        params={
            "from": at(5, 0).isoformat(),
            "to": at(8, 0).isoformat(),
            "service_id": str(service_id),
            "with_seats": "true",
        },
    )
    assert listed.status_code == 200, listed.text
    assert [(s["id"], s["seats_left"]) for s in listed.json()] == [(open_one["id"], 2)]


async def test_cancelling_a_seat_booking_frees_its_seats(world: World) -> None:
    service_id = await group_service(world, capacity=3)
    sid = (await schedule(world, service_id, at(6, 18)))["id"]
    booked = await book(world.client(), world, sid, 1, seats=3)
    assert booked.status_code == 201
    cancelled = await world.client().post(
        f"/v1/bookings/{booked.json()['id']}/cancel", json={"reason": "ill"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert await seats_in_sql(sid) == (0, 0)
    assert (await book(world.client(), world, sid, 2, seats=3)).status_code == 201


async def test_moving_seats_between_sessions_is_one_statement(world: World) -> None:
    service_id = await group_service(world, capacity=3)
    monday = (await schedule(world, service_id, at(6, 18)))["id"]
    tuesday = (await schedule(world, service_id, at(7, 18)))["id"]
    booked = (await book(world.client(), world, monday, 1, seats=2)).json()
    moved = await world.client().post(
        f"/v1/bookings/{booked['id']}/session", json={"session_id": tuesday, "seats": 3}
    )
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["session_id"], body["seats"], body["version"]) == (tuesday, 3, 2)
    assert body["starts_at"].startswith(at(7, 18).date().isoformat())
    assert await seats_in_sql(monday) == (0, 0)
    assert await seats_in_sql(tuesday) == (3, 3)
    # A move into a session without room is refused and leaves the booking as it was.
    other = (await book(world.client(), world, monday, 2, seats=2)).json()
    refused = await world.client().post(
        f"/v1/bookings/{other['id']}/session", json={"session_id": tuesday}
    )
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/session-full"
    assert await seats_in_sql(monday) == (2, 2)
    assert await seats_in_sql(tuesday) == (3, 3)
    history = await world.client().get(f"/v1/bookings/{booked['id']}/history")
    changed = [e for e in history.json() if e["event"] == "booking.changed"]
    assert changed
    assert changed[0]["changes"]["seats"] == {"from": 2, "to": 3}


async def test_cancelling_a_class_puts_attendees_at_risk_releases_holds_and_the_teacher(
    world: World,
) -> None:
    service_id = await group_service(world)
    sid = (await schedule(world, service_id, at(6, 10)))["id"]
    ids = [(await book(world.client(), world, sid, i)).json()["id"] for i in range(3)]
    held = await world.client("partner").post(
        f"/v1/businesses/{world.business_id}/sessions/{sid}/holds", json={"seats": 2}
    )
    assert held.status_code == 201, held.text
    cancelled = await world.client().post(
        f"/v1/businesses/{world.business_id}/sessions/{sid}/cancel",
        json={"reason": "teacher ill"},
    )
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    # The hold is released at once; the attendees keep their bookings, at risk, each
    # with an offer (none holds anything here: there is no later class; see
    # tests/guarantee/test_class_cancelled.py for the offers themselves).
    assert body["cancelled_booking_ids"] == [held.json()["hold"]["id"]]
    assert sorted(body["affected_booking_ids"]) == sorted(ids)
    assert len(body["offers"]) == 3
    assert body["session"]["status"] == "cancelled"
    assert await seats_in_sql(sid) == (3, 3)
    assert (
        await _count(
            "SELECT count(*) FROM booking WHERE at_risk_since IS NOT NULL AND id = ANY($1::uuid[])",
            [UUID(i) for i in ids],
        )
        == 3
    )
    late = await book(world.client(), world, sid, 9)
    assert late.status_code == 409
    freed = await world.client().post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(6, 10), staff=world.staff[0]),
    )
    assert freed.status_code == 201, freed.text
    # An attendee who cancels gives their seat back even though the class is cancelled.
    gone = await world.client().post(f"/v1/bookings/{ids[0]}/cancel", json={"reason": "ok"})
    assert gone.status_code == 200, gone.text
    assert await seats_in_sql(sid) == (2, 2)


@pytest.mark.parametrize(
    ("name", "body", "status"),
    [
        ("party of zero", {**seat_body(1), "seats": 0}, 400),
        ("negative party", {**seat_body(1), "seats": -2}, 400),
        ("party above capacity", {**seat_body(1), "seats": 13}, 422),
        ("party as text", {**seat_body(1), "seats": "two"}, 400),
        ("unknown field", {**seat_body(1), "price": 3}, 400),
    ],
)
async def test_bad_seat_requests_are_problems_and_write_nothing(
    world: World, name: str, body: dict[str, Any], status: int
) -> None:
    service_id = await group_service(world)
    sid = (await schedule(world, service_id, at(6, 18)))["id"]
    response = await world.client().post(
        f"/v1/businesses/{world.business_id}/sessions/{sid}/bookings", json=body
    )
    assert response.status_code == status, (name, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await _count("SELECT count(*) FROM booking") == 0
    assert await seats_in_sql(sid) == (0, 0)


async def test_sessions_of_a_one_to_one_service_are_refused(world: World) -> None:
    response = await world.client().post(
        f"/v1/businesses/{world.business_id}/sessions",
        json={
            "service_id": str(world.cut),
            "starts_at": at(6, 18).isoformat(),
            "staff_id": str(world.staff[0]),
        },
    )
    assert response.status_code == 422
    assert await _count("SELECT count(*) FROM session") == 0


async def test_a_seat_booking_is_not_moved_off_its_class_by_a_time_change(world: World) -> None:
    service_id = await group_service(world)
    sid = (await schedule(world, service_id, at(6, 10)))["id"]
    booked = (await book(world.client(), world, sid, 1)).json()
    response = await world.client().patch(
        f"/v1/bookings/{booked['id']}", json={"starts_at": at(6, 12).isoformat()}
    )
    assert response.status_code == 422, response.text
    again = await world.client().get(f"/v1/bookings/{booked['id']}")
    assert (again.json()["version"], again.json()["session_id"]) == (1, sid)


async def test_availability_shows_an_empty_class_as_busy_for_its_teacher(world: World) -> None:
    service_id = await group_service(world)
    await schedule(world, service_id, at(6, 10))
    response = await world.client().get(
        f"/v1/businesses/{world.business_id}/availability",
        params={
            "service_id": str(world.cut),
            "staff_id": str(world.staff[0]),
            "from": at(6, 9).isoformat(),
            "to": at(6, 12).isoformat(),
        },
    )
    assert response.status_code == 200, response.text
    starts = {slot["starts_at"][11:16] for slot in response.json()["slots"]}
    assert "09:00" in starts
    assert "11:15" in starts  # the class ends 11:00, its 15-minute buffer 11:15
    assert not starts & {"09:45", "10:00", "10:30", "11:00"}
