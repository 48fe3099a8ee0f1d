"""The self-service page in a real headless browser (Debian's chromium through Playwright)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from booking.access.tokens import make_booking_token
from tests.guarantee.helpers import book, fetch, fetchval, link
from tests.support import ROOT, World, at, days_ahead

CHROMIUM = Path(os.environ.get("BOOKING_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="chromium is not installed (apt-get install -y chromium)"
)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def test_open_the_link_change_the_time_and_see_the_new_time(
    world: World, browser: Any
) -> None:
    booking = await book(world, 3, 10)
    page = await browser.new_page(viewport=PHONE, locale="it-IT")
    response = await page.goto(f"{world.base_url}/b/{link(booking['id'])}")
    assert response is not None
    assert response.status == 200
    before = await page.inner_text("#when")
    assert "10:00" in before
    assert await page.inner_text("#reference") == booking["reference_code"]
    first_choice = page.locator("#change li").first
    new_time = (await first_choice.locator("span").inner_text()).strip()

    await first_choice.locator("button").click()
    await page.wait_for_selector("#done")

    assert await page.inner_text("#done") == "Prenotazione spostata."
    assert await page.inner_text("#when") == new_time
    assert new_time != before
    await page.screenshot(path=str(ROOT / ".local" / "selfservice-phone.png"), full_page=True)
    version = await fetchval("SELECT version FROM booking WHERE id = $1", UUID(booking["id"]))
    assert version == booking["version"] + 1


async def test_move_to_another_day_with_someone_else(world: World, browser: Any) -> None:
    booking = await book(world, 3, 10)  # with Giulia
    page = await browser.new_page(viewport=PHONE, locale="en-GB")
    await page.goto(f"{world.base_url}/b/{link(booking['id'])}?lang=en")
    assert await page.inner_text("#staff") == "Giulia"

    # The date input and the staff filter: a plain GET form.
    await page.fill("#pick-day", days_ahead(5).isoformat())
    await page.select_option("#pick-staff", str(world.staff[1]))
    async with page.expect_navigation():
        await page.click("#show-times")
    assert await page.input_value("#pick-day") == days_ahead(5).isoformat()
    # Then one day on with the "next day" link; the filter stays.
    async with page.expect_navigation():
        await page.click("#next-day")
    assert await page.input_value("#pick-day") == days_ahead(6).isoformat()
    assert await page.input_value("#pick-staff") == str(world.staff[1])
    choice = page.locator("#times li").filter(has_text="at 11:00").first
    new_time = (await choice.locator("span").inner_text()).strip()

    async with page.expect_navigation():
        await choice.locator("button").click()

    assert await page.inner_text("#done") == "Your booking has moved."
    assert await page.inner_text("#when") == new_time
    assert await page.inner_text("#staff") == "Marco"
    row = await fetch("SELECT starts_at, staff_id FROM booking WHERE id = $1", UUID(booking["id"]))
    assert (row[0]["starts_at"], row[0]["staff_id"]) == (at(6, 11), world.staff[1])
    await page.screenshot(path=str(ROOT / ".local" / "selfservice-browse.png"), full_page=True)


async def test_a_forged_link_gets_a_friendly_refusal(world: World, browser: Any) -> None:
    booking = await book(world, 3, 11)
    forged = make_booking_token("not-the-secret", UUID(booking["id"]))
    page = await browser.new_page(viewport=PHONE)

    response = await page.goto(f"{world.base_url}/b/{forged}?lang=en")

    assert response is not None
    assert response.status == 403
    assert await page.inner_text("#refused h1") == "This link cannot be used"
    text = await page.inner_text("body")
    assert "Traceback" not in text
    assert "problem" not in text.lower()
