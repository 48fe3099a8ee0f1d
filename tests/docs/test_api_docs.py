"""The API docs work offline: Swagger UI and its assets come from this server, not a CDN.

The browser test drives Debian's chromium through Playwright (never `playwright install`)
and aborts every request to a host other than 127.0.0.1, so the page can only render if
everything it needs is served by the app itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from booking.apidocs import ASSET_FILES, swagger_ui_dist
from tests.conftest import ROOT

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
# Summaries of operations the docs page must list (from the route handlers).
SUMMARIES = (
    "Free slots for a service",
    "Hold a slot while the customer checks out",
    "Book directly (no hold)",
    "Change time, staff or service in one atomic step",
    "Issue an API key (the secret is in this answer only)",
)


def test_the_package_ships_the_swagger_ui_assets() -> None:
    dist = swagger_ui_dist()
    for name in ASSET_FILES:
        assert (dist / name).stat().st_size > 10_000, name
    assert b"SwaggerUIBundle" in (dist / "swagger-ui-bundle.js").read_bytes()


async def test_schema_is_the_docs_page_and_every_asset_is_local(api_server: str) -> None:
    async with httpx.AsyncClient(base_url=api_server, timeout=30) as client:
        page = await client.get("/schema")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "SwaggerUIBundle(" in page.text
        urls = re.findall(r'(?:src|href)=["\']([^"\']+)["\']', page.text)
        assert len(urls) >= 4  # css, two scripts, favicon
        for url in urls:
            assert url.startswith("/schema/assets/"), f"not served by the app: {url}"
            asset = await client.get(url)  # no credentials: the docs are public
            assert asset.status_code == 200, url
            assert len(asset.content) > 1000, url
        assert (await client.get("/schema/swagger")).text == page.text
        document = await client.get("/schema/openapi.json")
        assert document.status_code == 200
        assert document.json()["openapi"].startswith("3.1")


async def test_root_links_to_the_docs(api_server: str) -> None:
    async with httpx.AsyncClient(base_url=api_server, timeout=30) as client:
        landing = await client.get("/", headers={"Accept": "text/html"})
        assert landing.status_code == 200
        assert landing.headers["content-type"].startswith("text/html")
        assert 'href="/schema"' in landing.text
        assert 'href="/schema/openapi.json"' in landing.text

        as_json = await client.get("/", headers={"Accept": "application/json"})
        assert as_json.status_code == 200
        assert as_json.json()["docs"] == "/schema"
        assert as_json.json()["openapi"] == "/schema/openapi.json"
        assert (await client.get(as_json.json()["docs"])).status_code == 200


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="chromium is not installed (apt-get install -y chromium)"
)
async def test_docs_page_renders_the_operations_with_no_network(
    api_server: str, browser: Any
) -> None:
    context = await browser.new_context()
    blocked: list[str] = []
    served: list[str] = []

    async def only_loopback(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            served.append(url)
            await route.continue_()
        else:
            blocked.append(url)
            await route.abort()

    await context.route("**/*", only_loopback)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    await page.goto(f"{api_server}/")
    await page.click("text=API docs (interactive)")
    await page.wait_for_selector(".opblock-summary-description", timeout=60_000)

    shown = await page.locator(".opblock-summary-description").all_inner_texts()
    for summary in SUMMARIES:
        assert summary in shown
    assert len(shown) >= 30
    assert await page.locator(".information-container .title").inner_text() != ""
    assert blocked == []  # nothing even tried to leave the machine
    assert any(url.endswith("/schema/assets/swagger-ui-bundle.js") for url in served)
    assert errors == []
    await page.screenshot(path=str(ROOT / ".local" / "api-docs.png"))
    await context.close()
