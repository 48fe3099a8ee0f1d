"""The booking page for a class, a visit of several services and a series: the customer
sees the class (places), the whole visit (each service with its staff), the next
appointments of a series with "cancel this one" and "cancel this and all later"."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from uuid import UUID

from tests.guarantee.helpers import fetch, link
from tests.selfservice.test_page_http import _nonce, _page, _post
from tests.sequences.test_sequences import visit_body
from tests.series.test_series import WEEKS, series_body
from tests.sessions.support import book as book_seat
from tests.sessions.support import group_service, schedule, seats_in_sql
from tests.support import World, at


async def test_a_class_shows_its_places_and_no_time_picker(world: World) -> None:
    yoga = await group_service(world, capacity=12)
    session = await schedule(world, yoga, at(6, 15))
    seat = await book_seat(world.client(), world, session["id"], 1, seats=2)
    assert seat.status_code == 201, seat.text
    page = await _page(world, link(seat.json()["id"]), lang="en")
    assert page.status_code == 200, page.text
    assert 'id="class"' in page.text
    assert "2 booked (10 still free in the class)" in page.text
    assert 'id="no-classes"' in page.text  # no other class to move to
    assert 'id="times"' not in page.text  # the single-booking picker would not move seats
    assert 'id="cancel"' in page.text


async def test_a_class_booking_moves_to_another_class_with_room_from_the_page(
    world: World,
) -> None:
    yoga = await group_service(world, capacity=12)
    here = await schedule(world, yoga, at(6, 15))
    full = await schedule(world, yoga, at(7, 15), capacity=2)
    later = await schedule(world, yoga, at(8, 15))
    assert (await book_seat(world.client(), world, full["id"], 7, seats=1)).status_code == 201
    seat = await book_seat(world.client(), world, here["id"], 1, seats=2)
    assert seat.status_code == 201, seat.text
    token = link(seat.json()["id"])
    page = await _page(world, token, lang="en")
    assert page.status_code == 200, page.text
    section = page.text[page.text.index('id="classes"') :]
    assert later["id"] in section
    assert full["id"] not in section  # 1 seat left: no room for the party of 2
    assert 'id="change-whole"' not in page.text

    done = await _post(
        world, token, "move-class", {"csrf": _nonce(page.text), "session_id": later["id"]}
    )

    assert done.status_code == 303, done.text
    rows = await fetch(
        "SELECT session_id::text, seats, status, version FROM booking WHERE id = $1",
        UUID(seat.json()["id"]),
    )
    assert rows == [{"session_id": later["id"], "seats": 2, "status": "confirmed", "version": 2}]
    assert await seats_in_sql(here["id"]) == (0, 0)
    assert await seats_in_sql(later["id"]) == (2, 2)
    after = await _page(world, token, lang="en", done="move_class")
    assert "Your places have moved to the class you chose." in after.text
    # A class that filled up meanwhile is refused by the database and shown as an error.
    refused = await _post(
        world, token, "move-class", {"csrf": _nonce(after.text), "session_id": full["id"]}
    )
    assert refused.status_code == 409, refused.text
    assert "Your booking is unchanged" in refused.text or "seats" in refused.text
    assert await seats_in_sql(later["id"]) == (2, 2)
    assert await seats_in_sql(full["id"]) == (1, 1)


async def test_a_visit_shows_every_service_with_its_staff(world: World) -> None:
    visit = await world.client().post(
        f"/v1/businesses/{world.business_id}/sequences", json=visit_body(world, at(6, 10))
    )
    assert visit.status_code == 201, visit.text
    page = await _page(world, link(visit.json()["booking"]["id"]), lang="it")
    assert page.status_code == 200, page.text
    assert 'id="visit"' in page.text
    section = page.text[page.text.index('id="visit"') :]
    assert section.index("Cut") < section.index("Colour")
    assert "alle 10:00" in section
    assert "alle 10:35" in section  # the colour after the cut and its 5-minute gap
    assert 'id="visit-times"' in page.text  # the whole visit moves, not one segment
    assert 'id="times"' not in page.text


async def test_a_visit_moves_as_a_whole_to_a_start_where_every_segment_fits(
    world: World,
) -> None:
    visit = await world.client().post(
        f"/v1/businesses/{world.business_id}/sequences", json=visit_body(world, at(6, 10))
    )
    assert visit.status_code == 201, visit.text
    booking_id = visit.json()["booking"]["id"]
    token = link(booking_id)
    page = await _page(world, token, lang="en")
    assert page.status_code == 200, page.text
    section = page.text[page.text.index('id="visit-times"') :]
    offered = re.findall(r'name="starts_at" value="([^"]+)"', section)
    assert offered
    assert at(6, 10).isoformat() not in offered  # where it already is
    chosen = datetime.fromisoformat(offered[-1])

    done = await _post(
        world, token, "move-visit", {"csrf": _nonce(page.text), "starts_at": offered[-1]}
    )

    assert done.status_code == 303, done.text
    [row] = await fetch("SELECT starts_at, version FROM booking WHERE id = $1", UUID(booking_id))
    assert row == {"starts_at": chosen, "version": 2}
    segments = await fetch(
        "SELECT position, starts_at, staff_id FROM booking_segment WHERE booking_id = $1 "
        "ORDER BY position",
        UUID(booking_id),
    )
    assert [s["starts_at"] for s in segments] == [
        chosen,
        chosen + timedelta(minutes=35),  # the 30-minute cut, then its 5-minute gap
    ]
    after = await _page(world, token, lang="en", done="move_visit")
    assert "Your whole visit has moved to the time you chose." in after.text


async def test_a_series_lists_the_next_and_cancels_this_and_later(world: World) -> None:
    created = await world.client().post(
        f"/v1/businesses/{world.business_id}/series", json=series_body(world, "all_or_nothing")
    )
    assert created.status_code == 201, created.text
    occurrences = created.json()["occurrences"]
    fourth = occurrences[3]
    token = link(fourth["booking_id"])
    page = await _page(world, token, lang="en")
    assert page.status_code == 200, page.text
    section = page.text[page.text.index('id="series"') :]
    shown = [o["reference_code"] for o in occurrences[3:] if o["reference_code"] in section]
    assert shown == [o["reference_code"] for o in occurrences[3:]]  # this one and later
    assert occurrences[2]["reference_code"] not in section
    assert 'id="cancel-following"' in page.text
    done = await _post(world, token, "cancel-following", {"csrf": _nonce(page.text)})
    assert done.status_code == 303, done.text
    rows = await fetch(
        "SELECT id, status FROM booking WHERE series_id = $1 ORDER BY starts_at",
        UUID(created.json()["series_id"]),
    )
    assert [r["status"] for r in rows] == ["confirmed"] * 3 + ["cancelled"] * (WEEKS - 3)
    after = await _page(world, token, lang="en", done="cancel_following")
    assert "every later one are cancelled" in after.text
