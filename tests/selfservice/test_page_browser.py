"""The self-service page in a real headless browser (Debian's chromium through Playwright)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from booking.access.tokens import make_booking_token
from tests.conftest import ROOT
from tests.guarantee.helpers import book, fetchval, link
from tests.support import World

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
