"""The manager's journey page in headless Chromium: offline except the app, the charts
show the seeded figures of test_metrics, a click opens a timeline, axe-core finds
nothing, a phone needs no sideways scrolling, and only managers see it."""

from __future__ import annotations

from typing import Any

from tests.console.helpers import issue_code, signed_in_client
from tests.desk.browser import DESKTOP, browser, needs_chromium
from tests.journey.test_metrics import D1, D3, _seed
from tests.support import World

__all__ = ["browser"]

PHONE = {"width": 390, "height": 844}


async def _manager_page(world: World, browser: Any, requests: list[str]) -> Any:
    """Signed in as a manager; every request that is not the app's own is refused."""
    issued = await issue_code(world, label="Owner", role="manager")
    context = await browser.new_context(viewport=DESKTOP)

    async def only_the_app(route: Any) -> None:
        requests.append(route.request.url)
        if route.request.url.startswith(world.base_url):
            await route.continue_()
        else:
            await route.abort("internetdisconnected")

    await context.route("**/*", only_the_app)
    page = await context.new_page()
    await page.goto(f"{world.base_url}/desk/sign-in?code={issued['code']}&lang=en")
    await page.click("#sign-in")
    await page.wait_for_load_state()
    return page


async def _bars(page: Any, chart: str) -> dict[str, str]:
    found: dict[str, str] = await page.eval_on_selector_all(
        f"#{chart} g.bar",
        "els => Object.fromEntries(els.map(e => [e.querySelector('text.label').textContent,"
        " e.querySelector('text.value').textContent]))",
    )
    return found


@needs_chromium
async def test_the_page_shows_the_seeded_figures_and_opens_a_timeline(
    world: World, browser: Any
) -> None:
    from axe_playwright_python.async_playwright import Axe

    await _seed(world)
    requests: list[str] = []
    page = await _manager_page(world, browser, requests)
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    await page.goto(f"{world.base_url}/desk/journey?from={D1.isoformat()}&to={D3.isoformat()}")
    await page.wait_for_selector("#chart-per-day", state="attached", timeout=5000)

    assert failed == []
    assert all(url.startswith(world.base_url) for url in requests)
    assert await page.evaluate("document.styleSheets.length") == 2  # console.css, journey.css
    # test_metrics' hand-computed figures, as the page draws them
    per_day = await page.eval_on_selector_all(
        "#chart-per-day g.day", "els => els.map(e => [e.dataset.day, e.dataset.value])"
    )
    assert [value for _, value in per_day] == ["3", "3", "1"]
    labels = await page.eval_on_selector_all(
        "#chart-per-day text.value", "els => els.map(e => e.textContent)"
    )
    assert labels == ["3", "3", "1"]
    assert await _bars(page, "chart-channel") == {"front_desk": "1", "partner": "2", "web": "4"}
    assert await _bars(page, "chart-staff") == {"Giulia": "3.50 (2)", "Marco": "4.00 (1)"}
    assert await _bars(page, "chart-service") == {"Cut": "3.67 (3)"}
    assert await _bars(page, "chart-promises") == {
        "callback": "100% (1/1)",
        "confirmation": "50% (1/2)",
    }
    tiles = {
        tile: await page.inner_text(f"#{tile} .value")
        for tile in (
            "kpi-bookings",
            "kpi-changed",
            "kpi-lost",
            "kpi-no-show",
            "kpi-promises",
            "kpi-feedback",
            "kpi-confirmation",
            "kpi-no-show-reminded",
        )
    }
    assert tiles == {
        "kpi-bookings": "7",
        "kpi-changed": "43%",
        "kpi-lost": "1 of 2",
        "kpi-no-show": "33%",
        "kpi-promises": "67% (2/3)",
        "kpi-feedback": "3.67 (3)",
        "kpi-confirmation": "60 / 84",
        "kpi-no-show-reminded": "50%",
    }
    # The list: b4 (score 2) and b7 (confirmation promise broken); b9 is the day after.
    # Latest appointment first: b7 (D3) then b4 (D2).
    flags = await page.eval_on_selector_all(
        "#attention li",
        "els => els.map(e => [...e.querySelectorAll('.flag')].map(f => f.textContent))",
    )
    assert flags == [["broken promise: confirmation"], ["score 2"]]
    problems = {"journey": [v["id"] for v in (await Axe().run(page)).response["violations"]]}

    low = page.locator("#attention li", has_text="score 2")
    reference = await low.get_attribute("data-reference")
    await low.locator("a").click()
    await page.wait_for_selector("#entries")
    assert await page.inner_text("#reference") == reference
    touchpoints = await page.eval_on_selector_all(
        "#entries li", "els => els.map(e => e.dataset.touchpoint)"
    )
    assert "booking.changed" in touchpoints
    assert "promise.kept" in touchpoints
    problems["timeline"] = [v["id"] for v in (await Axe().run(page)).response["violations"]]
    assert problems == {"journey": [], "timeline": []}

    await page.set_viewport_size(PHONE)
    await page.goto(f"{world.base_url}/desk/journey?from={D1.isoformat()}&to={D3.isoformat()}")
    width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1]  # no sideways scrolling on a phone


async def test_front_desk_is_refused_and_bad_periods_are_told(world: World) -> None:
    desk = await signed_in_client(world, label="Counter 1")
    refused = await desk.get("/desk/journey", params={"lang": "en"})
    assert refused.status_code == 403
    assert "for managers" in refused.text
    manager = await signed_in_client(world, label="Owner", role="manager")
    page = await manager.get("/desk/journey")
    assert page.status_code == 200
    assert 'id="chart-per-day"' in page.text
    assert "<script" not in page.text
    for bad in ({"from": "yesterday"}, {"from": D3.isoformat(), "to": D1.isoformat()}):
        answer = await manager.get("/desk/journey", params=bad)
        assert answer.status_code == 400
    outside = await world.client(None, follow_redirects=False).get("/desk/journey")
    assert outside.status_code == 303
    assert outside.headers["location"].startswith("/desk/sign-in?next=")
