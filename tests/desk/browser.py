"""Headless Chromium for the desk tests (Debian's chromium through Playwright, as the
self-service page tests), and signing a desk in the way a person does."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.helpers import issue_code
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
DESKTOP = {"width": 1280, "height": 900}
TABLET = {"width": 820, "height": 1180}

needs_chromium = pytest.mark.skipif(
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


class Counter:
    """Counts what a person does: clicks and key presses (each typed character is one)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.clicks = 0
        self.keys = 0

    async def click(self, selector: str) -> None:
        self.clicks += 1
        await self.page.click(selector)

    async def press(self, key: str) -> None:
        self.keys += 1
        await self.page.keyboard.press(key)

    async def type(self, text: str) -> None:
        self.keys += len(text)
        await self.page.keyboard.type(text, delay=20)


async def open_signed_in(
    world: World,
    browser: Any,
    *,
    label: str = "Counter 1",
    lang: str = "en",
    **context_args: Any,
) -> tuple[Any, Counter]:
    """A new browser context at the sign-in link, the button pressed once (counted)."""
    issued = await issue_code(world, label=label)
    context = await browser.new_context(viewport=DESKTOP, **context_args)
    page = await context.new_page()
    await page.goto(f"{world.base_url}/desk/sign-in?code={issued['code']}&lang={lang}")
    counter = Counter(page)
    await counter.click("#sign-in")
    await page.wait_for_selector("#q")
    return page, counter
