"""The booking card shows what the booking has: the rooms its allocations hold, a seat
booking's class, a sequence's whole visit, a series' next occurrences, and the journey
(the journey service's own timeline). Plain HTTP against the real server."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from booking import db
from tests.console.helpers import signed_in_client
from tests.guarantee.helpers import book
from tests.sequences.test_sequences import visit_body
from tests.series.test_series import series_body
from tests.sessions.support import book as book_seat
from tests.sessions.support import group_service, schedule
from tests.support import World, at


def section(page: str, element_id: str) -> str:
    """The HTML of the element with this id, up to its closing tag (sections, details)."""
    found = re.search(rf'<(\w+)[^>]*id="{element_id}"[^>]*>(.*?)</\1>', page, re.S)
    assert found is not None, f"no #{element_id} in the card"
    return found.group(2)


async def _card(world: World, booking_id: Any) -> str:
    desk = await signed_in_client(world)
    page = await desk.get(f"/desk/bookings/{booking_id}", params={"lang": "en"})
    assert page.status_code == 200, page.text
    return page.text


async def test_a_plain_booking_shows_no_extras_but_its_journey(world: World) -> None:
    booking = await book(world, 3, 10, phone="+393331234567", name="Anna Ferri")
    page = await _card(world, booking["id"])
    for absent in ('id="resources"', 'id="class"', 'id="visit"', 'id="series"'):
        assert absent not in page
    journey = section(page, "journey")
    assert "booking.created" in journey


async def test_the_card_names_the_room_its_allocation_holds(world: World) -> None:
    manager = world.client("manager")
    made = await manager.post(
        f"/v1/businesses/{world.business_id}/resources",
        json={"kind": "room", "name": "Cabin Rosa", "group": "cabin"},
    )
    assert made.status_code == 201, made.text
    needs = await manager.put(
        f"/v1/businesses/{world.business_id}/services/{world.cut}/needs",
        json={"resource_group": "cabin"},
    )
    assert needs.status_code == 200, needs.text
    booking = await book(world, 3, 10, phone="+393331234568", name="Bea Costa")
    assert booking["resource_id"] == made.json()["id"]
    page = await _card(world, booking["id"])
    assert "Cabin Rosa (room)" in section(page, "resources")


async def test_a_seat_booking_shows_its_class_and_the_seats_left(world: World) -> None:
    yoga = await group_service(world, capacity=12)
    session = await schedule(world, yoga, at(5, 18))
    client = world.client("front_desk")
    first = await book_seat(client, world, session["id"], 1, seats=3)
    assert first.status_code == 201, first.text
    second = await book_seat(client, world, session["id"], 2, seats=2)
    assert second.status_code == 201, second.text
    seat_booking = first.json()
    page = await _card(world, seat_booking.get("id") or seat_booking["booking"]["id"])
    facts = section(page, "class-facts")
    assert "Yoga" in facts
    assert "18:00" in facts
    assert "3 seat(s) booked here" in facts
    assert "5 of 12 taken, 7 left" in facts


async def test_a_sequence_shows_the_whole_visit_with_each_segments_staff(world: World) -> None:
    response = await world.client().post(
        f"/v1/businesses/{world.business_id}/sequences", json=visit_body(world, at(6, 10))
    )
    assert response.status_code == 201, response.text
    visit = response.json()
    async with db.connection() as conn:
        names = {
            r["id"]: r["name"]
            for r in await conn.fetch("SELECT id, name FROM staff WHERE id = ANY($1::uuid[])",
                                      world.staff[:2])
        }
    page = await _card(world, visit["booking"]["id"])
    segments = re.findall(r'<li class="segment">(.*?)</li>', section(page, "visit"), re.S)
    assert len(segments) == 2
    assert "10:00" in segments[0]
    assert names[world.staff[0]] in segments[0]
    assert "10:35" in segments[1]
    assert names[world.staff[1]] in segments[1]


async def test_a_series_shows_its_next_occurrences(world: World) -> None:
    response = await world.client().post(
        f"/v1/businesses/{world.business_id}/series",
        json=series_body(world, "all_or_nothing"),
    )
    assert response.status_code == 201, response.text
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT id, reference_code FROM booking WHERE series_id IS NOT NULL "
            "ORDER BY starts_at"
        )
    assert len(rows) == 10
    page = await _card(world, rows[0]["id"])
    shown = section(page, "series")
    occurrences = re.findall(r'<li class="occurrence">(.*?)</li>', shown, re.S)
    assert len(occurrences) == 5  # the next five, nearest first
    for row, item in zip(rows[1:6], occurrences, strict=True):
        assert row["reference_code"] in item
        assert f"/desk/bookings/{row['id']}" in item
    assert rows[0]["reference_code"] not in shown  # the booking itself is not "next"


async def test_the_journey_names_a_move_made_at_the_desk(world: World) -> None:
    booking = await book(world, 3, 10, phone="+393331234569", name="Carla Neri")
    desk = await signed_in_client(world, label="Counter 7")
    card = (await desk.get(f"/desk/bookings/{booking['id']}")).text
    slot = re.search(r'name="slot" value="([^"]+)"', card)
    csrf = re.search(r'name="csrf" value="([^"]+)"', card)
    assert slot is not None
    assert csrf is not None
    moved = await desk.post(
        f"/desk/bookings/{booking['id']}/move",
        data={"slot": slot.group(1), "version": str(booking["version"]), "csrf": csrf.group(1)},
    )
    assert moved.status_code == 303, moved.text
    page = (await desk.get(f"/desk/bookings/{booking['id']}")).text
    journey = section(page, "journey")
    assert "booking.changed" in journey
    assert "Counter 7" in journey
    # The same touchpoints as the journey API gives the business, newest last.
    api = await world.client("manager").get(f"/v1/bookings/{booking['id']}/journey")
    assert api.status_code == 200
    touchpoints = [e["touchpoint"] for e in api.json()["entries"]]
    assert re.findall(r'<span class="touchpoint-name">([^<]+)</span>', journey) == touchpoints
    assert UUID(booking["id"])
