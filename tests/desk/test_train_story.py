"""The train story at the desk, in a real browser against the real server and database:
sign in, type the reference, press an earlier time. Five actions at most."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from tests.desk.browser import browser, needs_chromium, open_signed_in
from tests.guarantee.helpers import book, fetch, fetchval
from tests.support import World

__all__ = ["browser"]
pytestmark = needs_chromium


async def test_sign_in_type_the_reference_press_an_earlier_time(
    world: World, browser: Any
) -> None:
    booking = await book(world, 3, 16)  # in three days at 16:00; earlier times are free
    page, counter = await open_signed_in(world, browser, label="Counter 1", lang="it")

    # Typed as a traveller reads it out: lower case, with a space in the middle.
    code = booking["reference_code"]
    await counter.type(f"{code[:3].lower()} {code[3:].lower()}")
    await page.wait_for_selector("#card #alternatives button")
    assert await page.inner_text("#reference") == code
    before = await page.inner_text("#when")
    first = page.locator("#alternatives button").first
    chosen = (await first.inner_text()).split(" · ")[0]
    counter.clicks += 1
    await first.click()
    await page.wait_for_selector("#done")

    assert await page.inner_text("#when") == chosen
    assert chosen != before
    assert await page.inner_text("#reference") == code  # same reference
    row = await fetch("SELECT version, starts_at FROM booking WHERE id = $1", UUID(booking["id"]))
    assert row[0]["version"] == booking["version"] + 1
    history = await fetch(
        "SELECT h.actor_type, k.name FROM booking_history h JOIN api_key k "
        "ON k.id::text = h.actor_id WHERE h.booking_id = $1 AND h.event = 'booking.changed'",
        UUID(booking["id"]),
    )
    assert history == [{"actor_type": "staff", "name": "Counter 1"}]
    await page.click("#history summary")
    assert "Counter 1" in await page.inner_text("#history")
    assert await page.inner_text("#done") == "Spostata. Stesso codice; il cliente riceve un SMS."
    changes = await fetchval(
        "SELECT count(*) FROM outbox WHERE aggregate_id = $1 AND topic = 'booking.changed'",
        UUID(booking["id"]),
    )
    assert changes == 1  # the change SMS (and partner webhook) go out from this one row
    # Sign-in press, the reference typed (7 keys, no Enter needed), one press on the time.
    actions = counter.clicks + 1  # typing the reference is one action
    print(f"\ntrain story: {counter.clicks} clicks, {counter.keys} key presses, {actions} actions")
    assert counter.clicks == 2
    assert actions <= 5
