"""Feeds out: a subscribed calendar app (here: icalendar, a standard parser) sees every
booking, a change as the same UID with a higher SEQUENCE, a cancel as CANCELLED."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import icalendar

from tests.guarantee.helpers import book, execute
from tests.sequences.test_sequences import visit_body
from tests.sessions.support import book as book_seat
from tests.sessions.support import group_service, schedule
from tests.support import World, at


async def _feed(world: World, resource_id: UUID | None = None) -> dict[str, Any]:
    body = {"resource_id": str(resource_id)} if resource_id else {}
    response = await world.client("manager").post(
        f"/v1/businesses/{world.business_id}/calendar-feeds", json=body
    )
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    # The URL names BOOKING_PUBLIC_BASE_URL; the test API listens elsewhere.
    answer["url"] = world.base_url + answer["url"][answer["url"].index("/feeds/") :]
    return answer


async def _subscribe(url: str, etag: str | None = None) -> httpx.Response:
    headers = {"If-None-Match": etag} if etag else {}
    async with httpx.AsyncClient(timeout=30) as client:  # no credentials: the URL is the key
        return await client.get(url, headers=headers)


def _events(response: httpx.Response) -> dict[str, icalendar.Component]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(response.content)
    return {str(e["uid"]).removesuffix("@booking"): e for e in calendar.walk("VEVENT")}


async def test_feed_shows_every_booking_then_a_change_and_a_cancel(world: World) -> None:
    giulia = world.staff[0]
    mine = [await book(world, 3, hour, phone=f"+39333000001{hour % 10}") for hour in (10, 12, 14)]
    other = await book(world, 3, 10, staff=1)
    feed = await _feed(world, giulia)

    first = await _subscribe(feed["url"])
    events = _events(first)
    assert set(events) == {b["id"] for b in mine}  # Marco's booking is not in Giulia's feed
    for booking in mine:
        event = events[booking["id"]]
        assert event["summary"] == "Anna - Cut"
        assert event.decoded("dtstart") == datetime.fromisoformat(booking["starts_at"])
        assert event.decoded("dtend") == datetime.fromisoformat(booking["ends_at"])
        assert event.decoded("sequence") == booking["version"]
        assert str(event["status"]) == "CONFIRMED"
    assert b"+39333" not in first.content  # no phone
    assert b"Ferri" not in first.content  # no surname
    assert first.headers["etag"]

    # Unchanged: a conditional poll costs nothing.
    unchanged = await _subscribe(feed["url"], first.headers["etag"])
    assert unchanged.status_code == 304
    assert unchanged.content == b""

    front_desk = world.client("front_desk")
    moved = await front_desk.patch(
        f"/v1/bookings/{mine[0]['id']}", json={"starts_at": at(4, 11).isoformat()}
    )
    assert moved.status_code == 200, moved.text
    cancelled = await front_desk.post(f"/v1/bookings/{mine[1]['id']}/cancel", json={})
    assert cancelled.status_code == 200, cancelled.text

    second = await _subscribe(feed["url"], first.headers["etag"])
    events = _events(second)
    assert second.headers["etag"] != first.headers["etag"]
    assert set(events) == {b["id"] for b in mine}
    changed = events[mine[0]["id"]]
    assert changed.decoded("sequence") > _events(first)[mine[0]["id"]].decoded("sequence")
    assert changed.decoded("dtstart") == at(4, 11)
    assert str(events[mine[1]["id"]]["status"]) == "CANCELLED"
    assert str(events[mine[2]["id"]]["status"]) == "CONFIRMED"

    # After the grace period the cancelled booking leaves the feed.
    await execute(
        "UPDATE booking SET updated_at = now() - interval '15 days' WHERE id = $1",
        UUID(mine[1]["id"]),
    )
    assert set(_events(await _subscribe(feed["url"]))) == {mine[0]["id"], mine[2]["id"]}
    assert other["id"] not in _events(await _subscribe(feed["url"]))


async def test_business_feed_has_everyone_and_revoking_closes_the_url(world: World) -> None:
    bookings = [await book(world, 3, 10, staff=s) for s in (0, 1, 2)]
    feed = await _feed(world)
    events = _events(await _subscribe(feed["url"]))
    assert set(events) == {b["id"] for b in bookings}
    assert {str(e["summary"]) for e in events.values()} == {
        "Anna - Cut (Giulia)",
        "Anna - Cut (Marco)",
        "Anna - Cut (Sara)",
    }
    assert feed["webcal_url"].startswith("webcal://")

    listed = await world.client("manager").get(f"/v1/businesses/{world.business_id}/calendar-feeds")
    assert [f["id"] for f in listed.json()] == [feed["feed"]["id"]]
    assert "url" not in listed.json()[0]

    revoked = await world.client("manager").delete(
        f"/v1/businesses/{world.business_id}/calendar-feeds/{feed['feed']['id']}"
    )
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    gone = await _subscribe(feed["url"])
    assert gone.status_code == 404
    assert gone.headers["content-type"].startswith("application/problem+json")


async def test_a_guessed_token_a_front_desk_key_or_another_tenant_get_nothing(
    world: World,
) -> None:
    feed = await _feed(world, world.staff[0])
    base, _, token = feed["url"].rpartition("/")
    forged = token[:-8] + ("A" * 4) + token[-4:]
    assert (await _subscribe(f"{base}/{forged}")).status_code == 404
    assert (await _subscribe(f"{base}/not-a-token.ics")).status_code == 404

    desk = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/calendar-feeds", json={}
    )
    assert desk.status_code == 403
    elsewhere = await world.client("other_staff").post(
        f"/v1/businesses/{world.business_id}/calendar-feeds", json={}
    )
    assert elsewhere.status_code == 404
    unknown = await world.client("manager").post(
        f"/v1/businesses/{world.business_id}/calendar-feeds",
        json={"resource_id": "00000000-0000-0000-0000-000000000001"},
    )
    assert unknown.status_code == 404


async def test_a_visit_shows_each_segment_to_its_own_staff_and_a_class_once(world: World) -> None:
    visit = await world.client().post(
        f"/v1/businesses/{world.business_id}/sequences", json=visit_body(world, at(6, 10))
    )
    assert visit.status_code == 201, visit.text
    booking, segments = visit.json()["booking"], visit.json()["segments"]
    yoga = await group_service(world)
    session = await schedule(world, yoga, at(6, 15))
    for index in (1, 2):
        seat = await book_seat(world.client(), world, session["id"], index)
        assert seat.status_code == 201, seat.text

    giulia = _events(await _subscribe((await _feed(world, world.staff[0]))["url"]))
    marco = _events(await _subscribe((await _feed(world, world.staff[1]))["url"]))
    # The cut is Giulia's, the colour Marco's: each sees only their own segment, at its time.
    assert set(marco) == {f"{booking['id']}-2"}
    colour = marco[f"{booking['id']}-2"]
    assert colour.decoded("dtstart") == datetime.fromisoformat(segments[1]["starts_at"])
    assert colour.decoded("dtend") == datetime.fromisoformat(segments[1]["ends_at"])
    assert str(colour["summary"]) == "Visit - Colour"
    # Giulia teaches the class: one event for it, not one per seat booking.
    assert set(giulia) == {f"{booking['id']}-1", session["id"]}
    assert str(giulia[session["id"]]["summary"]) == "Yoga (class)"
    everyone = _events(await _subscribe((await _feed(world))["url"]))
    assert set(everyone) == {f"{booking['id']}-1", f"{booking['id']}-2", session["id"]}
