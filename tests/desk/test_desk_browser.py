"""The desk in a real browser: two desks on one booking, the day's actions, keyboard only,
accessibility (axe-core), a tablet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from tests.desk.browser import TABLET, browser, needs_chromium, open_signed_in
from tests.guarantee.helpers import book, execute, fetch, fetchval
from tests.support import World, days_ahead

__all__ = ["browser"]
pytestmark = needs_chromium


async def test_two_desks_change_one_booking_the_second_sees_the_new_state(
    world: World, browser: Any
) -> None:
    booking = await book(world, 3, 16)
    first, _ = await open_signed_in(world, browser, label="Counter 1")
    second, _ = await open_signed_in(world, browser, label="Counter 2")
    for page in (first, second):
        await page.goto(f"{world.base_url}/desk/bookings/{booking['id']}")
        await page.wait_for_selector("#alternatives button")

    await first.locator("#alternatives button").first.click()
    await first.wait_for_selector("#done")
    moved_to = await first.inner_text("#when")
    # The second desk still shows the old card and presses a time of its own.
    await second.locator("#alternatives button").nth(1).click()
    await second.wait_for_selector("#error")

    assert "changed by another desk a moment ago" in (await second.inner_text("#error")).lower()
    assert await second.inner_text("#when") == moved_to  # the new state, not the old one
    row = await fetch("SELECT version FROM booking WHERE id = $1", UUID(booking["id"]))
    assert row[0]["version"] == booking["version"] + 1
    changes = await fetchval(
        "SELECT count(*) FROM booking_history WHERE booking_id = $1 AND event = "
        "'booking.changed'",
        UUID(booking["id"]),
    )
    assert changes == 1


async def _today_in_the_past(booking_id: str) -> None:
    """Test setup only: the appointment began a few minutes ago today (Rome)."""
    now = datetime.now(UTC)
    start = now - timedelta(minutes=5)
    await execute(
        "UPDATE booking SET starts_at = $2::timestamptz, ends_at = $2::timestamptz + "
        "interval '30 minutes', blocked_from = $2::timestamptz, blocked_until = "
        "$2::timestamptz + interval '40 minutes' WHERE id = $1",
        UUID(booking_id),
        start,
    )


async def test_walk_in_into_a_free_gap(world: World, browser: Any) -> None:
    page, _ = await open_signed_in(world, browser)
    day = days_ahead(2)
    await page.goto(f"{world.base_url}/desk/day?date={day.isoformat()}")
    column = page.locator(f"#col-{world.staff[1]}")  # Marco: a free day
    gap = column.locator("li.gap").first
    assert await gap.locator("form").count() == 0  # the form comes on demand (issue 15)
    await gap.locator("a", has_text="Walk-in").click()
    form = gap.locator("form.walk-in")
    await form.wait_for()
    # Keyboard first: the fetched form has the focus on its first field to type.
    assert await page.evaluate("document.activeElement.name") == "name"
    await form.locator("input[name=time]").fill("11:00")
    await form.locator("select[name=service_id]").select_option(str(world.cut))
    await form.locator("input[name=name]").fill("Walk In")
    await form.locator("input[name=phone]").fill("333 765 4321")
    await form.locator("button[type=submit]").click()
    await page.wait_for_selector("#done")

    rows = await fetch(
        "SELECT b.staff_id, b.channel, b.status, c.phone FROM booking b JOIN customer c "
        "ON c.id = b.customer_id WHERE c.name = 'Walk In'"
    )
    assert rows == [
        {
            "staff_id": world.staff[1],
            "channel": "front_desk",
            "status": "confirmed",
            "phone": "+393337654321",
        }
    ]
    booked = column.locator("li.booking", has_text="Walk In")
    assert "11:00" in await booked.inner_text()


async def test_check_in_no_show_and_cancel_with_a_reason(world: World, browser: Any) -> None:
    arriving = await book(world, 3, 10, staff=0)
    missing = await book(world, 3, 11, staff=1, phone="+393331112222", name="Bruno Neri")
    cancelling = await book(world, 3, 12, staff=2, phone="+393331113333", name="Carla Bo")
    for booking in (arriving, missing):
        await _today_in_the_past(booking["id"])
    page, _ = await open_signed_in(world, browser)
    await page.goto(f"{world.base_url}/desk/day")
    row = page.locator(f"li[data-reference='{arriving['reference_code']}']")
    await row.locator("button", has_text="Check in").click()
    await page.wait_for_selector("#done")
    row = page.locator(f"li[data-reference='{missing['reference_code']}']")
    await row.locator("button", has_text="No-show").click()
    await page.wait_for_selector("#done")
    await page.goto(f"{world.base_url}/desk/day?date={days_ahead(3).isoformat()}")
    row = page.locator(f"li[data-reference='{cancelling['reference_code']}']")
    await row.locator("a", has_text="Cancel").click()  # the reason's form, on demand
    await row.locator("input[name=reason]").fill("customer phoned: ill")
    await row.locator("button", has_text="Cancel").click()
    await page.wait_for_selector("#done")

    statuses = {
        r["reference_code"]: (r["status"], r["cancel_reason"])
        for r in await fetch("SELECT reference_code, status, cancel_reason FROM booking")
    }
    assert statuses[arriving["reference_code"]] == ("checked_in", None)
    assert statuses[missing["reference_code"]] == ("no_show", None)
    assert statuses[cancelling["reference_code"]] == ("cancelled", "customer phoned: ill")


async def test_keyboard_only_and_accessible(world: World, browser: Any) -> None:
    from axe_playwright_python.async_playwright import Axe

    booking = await book(world, 3, 16)
    await book(world, 3, 12, staff=1, phone="+393331113333", name="Carla Bo")  # stays put
    page, _ = await open_signed_in(world, browser)
    axe = Axe()
    problems: dict[str, list[Any]] = {}
    # Keyboard only: the search field has the focus; type, Enter (to the earliest time),
    # Enter (move).
    assert await page.evaluate("document.activeElement.id") == "q"
    await page.keyboard.type(booking["reference_code"], delay=20)
    await page.wait_for_selector("#card #alternatives button")
    problems["find with card"] = (await axe.run(page)).response["violations"]
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.closest('#alternatives') !== null")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#done")
    problems["card"] = (await axe.run(page)).response["violations"]
    await page.keyboard.press("/")  # from anywhere, back to the search
    await page.wait_for_selector("#q")
    await page.goto(f"{world.base_url}/desk/day?date={days_ahead(3).isoformat()}")
    problems["day"] = (await axe.run(page)).response["violations"]
    # A walk-in's form, opened from the keyboard (Enter on the gap's link), then a cancel's.
    await page.focus("li.gap a[data-form]")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("form.walk-in")
    assert await page.evaluate("document.activeElement.name") == "name"
    await page.focus("li.booking a[data-form]")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("form.cancel")
    assert await page.evaluate("document.activeElement.name") == "reason"
    problems["day with forms"] = (await axe.run(page)).response["violations"]
    await page.goto(f"{world.base_url}/desk/sign-in")
    problems["sign-in"] = (await axe.run(page)).response["violations"]
    found = {name: [v["id"] for v in violations] for name, violations in problems.items()}
    assert found == {name: [] for name in problems}


async def test_the_day_fits_a_tablet(world: World, browser: Any) -> None:
    await book(world, 3, 10)
    page, _ = await open_signed_in(world, browser)
    await page.set_viewport_size(TABLET)
    await page.goto(f"{world.base_url}/desk/day?date={days_ahead(3).isoformat()}")
    width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1]  # no sideways scrolling
    sizes = await page.eval_on_selector_all(
        "#timeline button, #timeline .button",
        "els => els.map(e => e.getBoundingClientRect().height)",
    )
    assert sizes
    assert min(sizes) >= 24  # big enough to touch (WCAG 2.2 target size)
