"""The self-service page over plain HTTP: forms, CSRF, refusals, calendar, languages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
import icalendar

from booking.access.tokens import make_booking_token
from tests.guarantee.helpers import book, execute, fetch, fetchval, link
from tests.support import TEST_SECRET, World, at


def _nonce(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match is not None
    return match.group(1)


async def _page(world: World, token: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=world.base_url) as client:
        return await client.get(f"/b/{token}", params=params)


async def _post(
    world: World, token: str, action: str, data: dict[str, str], **headers: str
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=world.base_url) as client:
        return await client.post(f"/b/{token}/{action}", data=data, headers=headers)


async def test_the_page_shows_the_booking_in_the_business_zone_in_both_languages(
    world: World,
) -> None:
    booking = await book(world, 3, 10)
    token = link(booking["id"])

    italian = await _page(world, token)
    english = await _page(world, token, lang="en")

    assert italian.status_code == 200
    assert italian.headers["content-type"].startswith("text/html")
    assert "La tua prenotazione" in italian.text
    assert "alle 10:00" in italian.text  # 10:00 in Rome, whatever the server's zone
    assert "Giulia" in italian.text
    assert booking["reference_code"] in italian.text
    assert "Your booking" in english.text
    assert "at 10:00" in english.text
    assert italian.headers["cache-control"] == "no-store"


async def test_forms_without_the_nonce_or_from_another_site_are_refused(world: World) -> None:
    booking = await book(world, 3, 10)
    token = link(booking["id"])
    nonce = _nonce((await _page(world, token)).text)

    missing = await _post(world, token, "cancel", {})
    wrong = await _post(world, token, "cancel", {"csrf": "0" * 32})
    not_ascii = await _post(world, token, "cancel", {"csrf": "ñ" * 32})
    other_site = await _post(world, token, "cancel", {"csrf": nonce}, Origin="https://evil.example")
    # Another booking's nonce does not work either: it is bound to the token.
    other = await book(world, 3, 11, phone="+393330001111")
    foreign_nonce = _nonce((await _page(world, link(other["id"]))).text)
    swapped = await _post(world, token, "cancel", {"csrf": foreign_nonce})

    for response in (missing, wrong, not_ascii, other_site, swapped):
        assert response.status_code == 403
        assert "Questo link non si può usare" in response.text or "modulo" in response.text
    status = await fetchval("SELECT status FROM booking WHERE id = $1", UUID(booking["id"]))
    assert status == "confirmed"
    same_site = await _post(world, token, "cancel", {"csrf": nonce}, Origin=world.base_url)
    assert same_site.status_code == 303
    status = await fetchval("SELECT status FROM booking WHERE id = $1", UUID(booking["id"]))
    assert status == "cancelled"


async def test_expired_and_malformed_links_get_friendly_pages(world: World) -> None:
    booking = await book(world, 3, 10)
    expired = make_booking_token(
        TEST_SECRET, UUID(booking["id"]), datetime.now(UTC) - timedelta(minutes=1)
    )

    gone = await _page(world, expired, lang="en")
    junk = await _page(world, "not-a-token")
    post_junk = await _post(world, "bt.zzz", "cancel", {"csrf": "x"})
    # A MAC in anything but ASCII is a forged link like any other, not a 500.
    genuine = link(booking["id"])
    forged_mac = genuine[: genuine.rindex(".") + 1] + "ñé" * 20
    not_ascii = await _page(world, forged_mac)
    post_not_ascii = await _post(world, forged_mac, "cancel", {"csrf": "ñ"})

    assert gone.status_code == 410
    assert "This link has expired" in gone.text
    assert junk.status_code == 403
    assert post_junk.status_code == 403
    assert not_ascii.status_code == 403
    assert post_not_ascii.status_code == 403
    for response in (gone, junk, post_junk, not_ascii, post_not_ascii):
        assert response.headers["content-type"].startswith("text/html")
        assert "Traceback" not in response.text


async def test_a_refused_change_stays_on_the_page_with_the_reason(world: World) -> None:
    booking = await book(world, 3, 10)
    token = link(booking["id"])
    nonce = _nonce((await _page(world, token)).text)
    taken = await book(world, 3, 14, staff=0, phone="+393330002222")
    await book(world, 3, 14, staff=1, phone="+393330003333")
    await book(world, 3, 14, staff=2, phone="+393330004444")

    response = await _post(world, token, "change", {"csrf": nonce, "starts_at": taken["starts_at"]})

    assert response.status_code == 409
    assert 'id="error"' in response.text
    version = await fetchval("SELECT version FROM booking WHERE id = $1", UUID(booking["id"]))
    assert version == booking["version"]


async def test_calendar_file_has_the_appointment(world: World) -> None:
    booking = await book(world, 3, 10)
    async with httpx.AsyncClient(base_url=world.base_url) as client:
        response = await client.get(f"/b/{link(booking['id'])}/calendar.ics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(response.content)
    [event] = calendar.walk("VEVENT")
    assert event.decoded("dtstart") == at(3, 10)
    assert event.decoded("dtend") == at(3, 10, 30)
    assert booking["reference_code"] in str(event.get("description"))


async def test_the_customer_confirms_a_pending_booking_and_joins_the_waitlist(
    world: World,
) -> None:
    booking = await book(world, 3, 10, staff=2, service=world.consult)
    assert booking["status"] == "pending"
    token = link(booking["id"])
    nonce = _nonce((await _page(world, token)).text)

    confirmed = await _post(world, token, "confirm", {"csrf": nonce})
    joined = await _post(world, token, "waitlist", {"csrf": nonce})

    assert confirmed.status_code == 303
    assert joined.status_code == 303
    assert joined.headers["location"].endswith("?done=waitlist")
    status = await fetchval("SELECT status FROM booking WHERE id = $1", UUID(booking["id"]))
    assert status == "confirmed"
    [entry] = await fetch("SELECT * FROM waitlist_entry WHERE booking_id = $1", UUID(booking["id"]))
    assert entry["status"] == "waiting"
    assert entry["latest"] == datetime.fromisoformat(booking["starts_at"])
    page = await _page(world, token)
    assert 'id="waitlist-on"' in page.text
    assert 'id="confirm"' not in page.text


async def test_a_business_can_turn_customer_confirmation_off(world: World) -> None:
    await execute(
        "UPDATE business SET customer_may_confirm = false WHERE id = $1", world.business_id
    )
    booking = await book(world, 3, 10, staff=2, service=world.consult)
    token = link(booking["id"])
    page = await _page(world, token)
    assert 'id="confirm"' not in page.text

    refused = await _post(world, token, "confirm", {"csrf": _nonce(page.text)})

    assert refused.status_code == 403
    status = await fetchval("SELECT status FROM booking WHERE id = $1", UUID(booking["id"]))
    assert status == "pending"


async def test_the_page_shows_an_open_offer_and_takes_the_chosen_option(world: World) -> None:
    booking = await book(world, 3, 10)
    manager = world.client("manager")
    response = await manager.post(
        f"/v1/businesses/{world.business_id}/staff/{world.staff[0]}/time-off",
        json={"starts_at": at(3, 9).isoformat(), "ends_at": at(3, 12).isoformat()},
    )
    [offer] = response.json()["offers"]
    token = link(booking["id"])
    page = await _page(world, token)
    assert 'id="offer"' in page.text
    assert 'id="at-risk"' in page.text
    assert page.text.count('name="option"') == 3

    taken = await _post(
        world, token, "accept", {"csrf": _nonce(page.text), "offer_id": offer["id"], "option": "3"}
    )

    assert taken.status_code == 303
    assert taken.headers["location"].endswith("?done=accept")
    row = await fetch("SELECT starts_at, staff_id FROM booking WHERE id = $1", UUID(booking["id"]))
    assert row[0]["starts_at"] == datetime.fromisoformat(offer["options"][2]["starts_at"])
    after = await _page(world, token)
    assert 'id="offer"' not in after.text
    assert 'id="at-risk"' not in after.text
