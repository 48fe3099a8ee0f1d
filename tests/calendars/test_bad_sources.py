"""Bad input from outside calendars: a 4xx for a URL refused at creation, else a clear
status on the connection (last error, last success) and nothing else changed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from tests.calendars.helpers import calendar, connect, event, sync
from tests.calendars.servers import IcsServer, Served
from tests.guarantee.helpers import fetchval
from tests.support import World, at, free_port


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://calendar.example.org/x.ics", "must use"),
        ("file:///etc/passwd", "must use"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://user:secret@calendar.example.org/x.ics", "credentials"),
        ("http://", "no host"),
    ],
)
async def test_a_refused_url_is_a_422_and_nothing_is_stored(
    world: World, url: str, why: str
) -> None:
    response = await connect(world, world.staff[0], kind="ics", url=url)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert why in response.json()["detail"]
    assert await fetchval("SELECT count(*) FROM calendar_connection") == 0


async def test_write_back_needs_caldav_and_unknown_staff_is_404(world: World) -> None:
    bad = await connect(
        world, world.staff[0], kind="ics", url="https://calendar.example.org/x.ics", write_back=True
    )
    assert bad.status_code == 422
    missing = await connect(
        world, UUID(int=7), kind="ics", url="https://calendar.example.org/x.ics"
    )
    assert missing.status_code == 404
    assert await fetchval("SELECT count(*) FROM calendar_connection") == 0


async def _connected_with_error(world: World, url: str) -> dict[str, Any]:
    response = await connect(world, world.staff[0], kind="ics", url=url)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    assert answer["sync"]["status"] == "error"
    assert answer["connection"]["last_error"] == answer["sync"]["error"]
    assert answer["connection"]["last_error_at"] is not None
    assert answer["connection"]["last_success_at"] is None
    assert await fetchval("SELECT count(*) FROM time_off") == 0
    return answer


async def test_unreachable_url(world: World) -> None:
    answer = await _connected_with_error(world, f"http://127.0.0.1:{free_port()}/x.ics")
    assert answer["sync"]["error"] == "The server cannot be reached"


async def test_a_body_that_is_no_calendar(world: World, ics_server: IcsServer) -> None:
    url = ics_server.put("page", Served(b"<html>Welcome</html>", content_type="text/html"))
    answer = await _connected_with_error(world, url)
    assert "does not answer with an iCalendar" in answer["sync"]["error"]


async def test_an_error_status(world: World, ics_server: IcsServer) -> None:
    answer = await _connected_with_error(world, ics_server.base_url + "/missing.ics")
    assert answer["sync"]["error"] == "The server answered 404"


async def test_a_50_mb_feed_stops_at_10_mb(world: World, ics_server: IcsServer) -> None:
    url = ics_server.put("huge.ics", Served(endless=True))
    answer = await _connected_with_error(world, url)
    assert answer["sync"]["error"] == "The calendar is larger than 10 MB"


async def test_a_redirect_to_a_private_address_is_refused(
    world: World, ics_server: IcsServer
) -> None:
    url = ics_server.put("moved.ics", Served(location="http://169.254.169.254/feed.ics"))
    answer = await _connected_with_error(world, url)
    assert "169.254.169.254 is a cloud metadata address" in answer["sync"]["error"]
    assert ics_server.requests == [("moved.ics", None)]


async def test_an_event_in_the_year_9999_blocks_nothing(
    world: World, ics_server: IcsServer
) -> None:
    far = datetime(9999, 12, 30, 10, tzinfo=UTC)
    body = calendar(
        event("far@y", far, far.replace(hour=11), rrule={"freq": "daily"}),
        event("near@y", at(3, 10), at(3, 11)),
    )
    response = await connect(
        world, world.staff[0], kind="ics", url=ics_server.put("f", Served(body))
    )
    answer = response.json()
    assert answer["sync"]["status"] == "synced", answer
    assert answer["connection"]["last_error"] is None
    assert await fetchval("SELECT count(*) FROM time_off") == 1


async def test_a_malformed_rrule_keeps_the_last_good_blocks(
    world: World, ics_server: IcsServer
) -> None:
    url = ics_server.put("r.ics", Served(calendar(event("ok@y", at(3, 10), at(3, 11)))))
    first = (await connect(world, world.staff[0], kind="ics", url=url)).json()
    assert first["sync"]["added"] == 1
    good_at = first["connection"]["last_success_at"]
    broken = calendar(event("ok@y", at(3, 10), at(3, 11))).replace(
        b"END:VEVENT", b"RRULE:FREQ=SOMETIMES;BYDAY=XX\r\nEND:VEVENT"
    )
    ics_server.paths["r.ics"] = Served(broken)

    second = await sync(world, world.staff[0], first["connection"]["id"])

    assert second["sync"]["status"] == "error"
    assert second["sync"]["error"].startswith("An event cannot be read")
    assert second["connection"]["last_success_at"] == good_at
    assert second["connection"]["busy_blocks"] == 1
    assert await fetchval("SELECT count(*) FROM time_off") == 1
