"""Finding 9 of issue 18: anti-framing and anti-sniffing headers on every HTML page.

The pages are found by walking the app's route table (every GET route that answers
HTML), so a page added later is checked without being listed here.
"""

from __future__ import annotations

import re
from uuid import uuid4

import httpx

from booking.app import create_app
from booking.headers import DOCS_CSP, PAGE_CSP
from tests.guarantee.helpers import book, link
from tests.support import World


def _assert_page_headers(response: httpx.Response, csp: str = PAGE_CSP) -> None:
    assert response.headers["content-type"].startswith("text/html"), response.request.url
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["content-security-policy"] == csp
    assert response.headers["x-frame-options"] == "DENY"
    # No page's URL (which may carry a link token) leaves the site. The staff consoles say
    # same-origin: with no-referrer a browser sends "Origin: null" on their form posts,
    # which their CSRF check (booking.console) rightly refuses.
    path = response.request.url.path
    expected = "same-origin" if path.startswith("/desk") else "no-referrer"
    assert response.headers["referrer-policy"] == expected, path


def _get_paths() -> list[str]:
    """Every GET path template of the app (the docs pages included)."""
    app = create_app()
    paths = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if "GET" in handler.http_methods:
                paths.append(route.path)
    return sorted(set(paths))


async def test_every_html_page_in_the_route_table_has_the_headers(world: World) -> None:
    booking = await book(world, 3, 10, staff=0)
    token = link(booking["id"])
    pages = []
    async with httpx.AsyncClient(base_url=world.base_url) as client:
        for template in _get_paths():
            path = re.sub(r"\{token:?[^}]*\}", token, template)
            path = re.sub(r"\{[^}]*uuid[^}]*\}", str(uuid4()), path)
            path = re.sub(r"\{[^}]*\}", "x", path)
            response = await client.get(path, headers={"Accept": "text/html"})
            assert response.status_code < 500, path
            if response.headers.get("content-type", "").startswith("text/html"):
                pages.append(template)
                _assert_page_headers(response, DOCS_CSP if path.startswith("/schema") else PAGE_CSP)
            else:
                assert response.headers["x-content-type-options"] == "nosniff", path
    assert "/" in pages
    assert "/schema/swagger" in pages
    assert any(page.startswith("/b/") for page in pages)


async def test_the_customer_page_and_its_refusal_page(world: World) -> None:
    booking = await book(world, 3, 11, staff=0)
    async with httpx.AsyncClient(base_url=world.base_url) as client:
        page = await client.get(f"/b/{link(booking['id'])}")
        assert page.status_code == 200
        _assert_page_headers(page)
        forged = await client.get(f"/b/bt.{uuid4().hex}.9999999999.forged")
        assert 400 <= forged.status_code < 500
        _assert_page_headers(forged)


async def test_the_landing_page_and_the_offline_docs_page(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.base_url) as client:
        _assert_page_headers(await client.get("/"))
        docs = await client.get("/schema/swagger")
        assert docs.status_code == 200
        _assert_page_headers(docs, DOCS_CSP)
        # The docs page still works under its policy: every script and stylesheet it loads
        # comes from this origin (no CDN), which 'self' allows.
        sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text) + re.findall(
            r"(?:src|href)='([^']+)'", docs.text
        )
        assert sources
        assert all(src.startswith("/") for src in sources), sources
        for src in sources:
            asset = await client.get(src)
            assert asset.status_code == 200, src


async def test_json_answers_are_not_sniffed_either(world: World) -> None:
    async with world.client() as client:
        response = await client.get(f"/v1/bookings/{uuid4()}")
    assert response.status_code == 404
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers
