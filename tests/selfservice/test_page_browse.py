"""The self-service page's day picker and staff filter, over plain HTTP (no script)."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import httpx
import pytest

from tests.guarantee.helpers import book, fetch, link
from tests.support import ROME, World, at, days_ahead


async def _get(world: World, path: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=world.base_url) as client:
        return await client.get(path, params=params or None)


def _times(page: str) -> list[tuple[datetime, str | None]]:
    """Each "move here" form of the page: its starts_at and its staff_id (if any)."""
    found = []
    forms = re.findall(r'<form method="post" action="[^"]*/change[^"]*">(.*?)</form>', page, re.S)
    for form in forms:
        starts = re.search(r'name="starts_at" value="([^"]+)"', form)
        staff = re.search(r'name="staff_id" value="([^"]+)"', form)
        assert starts is not None
        found.append((datetime.fromisoformat(starts.group(1)), staff.group(1) if staff else None))
    return found


def _nonce(page: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match is not None
    return match.group(1)


def _href(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}" href="([^"]+)"', page)
    assert match is not None, element_id
    return html.unescape(match.group(1))


async def test_the_customer_moves_to_another_day_with_someone_else(world: World) -> None:
    booking = await book(world, 3, 10, staff=0)  # with Giulia
    token = link(booking["id"])
    base = f"/b/{token}"

    first = await _get(world, base)
    assert first.status_code == 200
    assert 'id="pick-day"' in first.text
    assert 'id="pick-staff"' in first.text
    for name in ("Chiunque", "Giulia", "Marco", "Sara"):
        assert f">{name}</option>" in first.text
    assert _times(first.text), "the first day with free times is shown"

    target_day = days_ahead(5)
    marco = str(world.staff[1])
    chosen = await _get(world, base, day=target_day.isoformat(), staff=marco)
    assert chosen.status_code == 200
    assert f'value="{target_day.isoformat()}"' in chosen.text
    assert f'<option value="{marco}" selected>' in chosen.text
    times = _times(chosen.text)
    assert times
    assert {moment.astimezone(ROME).date() for moment, _ in times} == {target_day}
    assert {staff for _, staff in times} == {marco}
    assert at(5, 11) in [moment for moment, _ in times]

    # The day links keep the staff filter and move one day at a time.
    following = await _get(world, _href(chosen.text, "next-day").split("#")[0])
    assert following.status_code == 200
    assert {m.astimezone(ROME).date() for m, _ in _times(following.text)} == {
        target_day + timedelta(days=1)
    }
    assert {staff for _, staff in _times(following.text)} == {marco}
    assert f'value="{(target_day - timedelta(days=1)).isoformat()}"' in (
        await _get(world, _href(chosen.text, "prev-day").split("#")[0])
    ).text

    async with httpx.AsyncClient(base_url=world.base_url) as client:
        moved = await client.post(
            f"{base}/change",
            data={
                "csrf": _nonce(chosen.text),
                "starts_at": at(5, 11).isoformat(),
                "staff_id": marco,
                "day": target_day.isoformat(),
                "staff": marco,
            },
        )
    assert moved.status_code == 303, moved.text
    [row] = await fetch(
        "SELECT starts_at, staff_id, version FROM booking WHERE id = $1", UUID(booking["id"])
    )
    assert row["starts_at"] == at(5, 11)
    assert row["staff_id"] == world.staff[1]
    assert row["version"] == booking["version"] + 1
    after = await _get(world, base, lang="en")
    assert "Marco" in after.text
    assert "at 11:00" in after.text


async def test_anyone_shows_each_time_once_without_naming_staff(world: World) -> None:
    booking = await book(world, 3, 10)
    page = await _get(world, f"/b/{link(booking['id'])}", day=days_ahead(4).isoformat())
    times = _times(page.text)
    assert page.status_code == 200
    assert len({moment for moment, _ in times}) == len(times)  # three staff, one button
    assert {staff for _, staff in times} == {None}  # the change picks who is free
    assert at(4, 9) in [moment for moment, _ in times]


async def test_a_day_with_no_free_times_says_so(world: World) -> None:
    booking = await book(world, 3, 10)
    sara = str(world.staff[2])
    for hour in range(9, 18):  # Sara's day 6, hour by hour: the 20 minutes between fit no cut
        await book(world, 6, hour, staff=2, phone=f"+39333555{hour:04d}")
    page = await _get(world, f"/b/{link(booking['id'])}", day=days_ahead(6).isoformat(), staff=sara)
    assert page.status_code == 200
    assert _times(page.text) == []
    assert 'id="no-times"' in page.text
    assert "Nessun orario libero in questo giorno" in page.text


@pytest.mark.parametrize(
    "params",
    [
        {"day": "tomorrow"},
        {"day": "2026-02-30"},
        {"day": "2026-1-5"},
        {"day": "x" * 5000},
        {"day": (datetime.now(ROME).date() - timedelta(days=1)).isoformat()},
        {"day": days_ahead(400).isoformat()},
        {"staff": "not-a-uuid"},
        {"staff": str(uuid4())},
        {"staff": "any", "day": "2026-13-01"},
    ],
)
async def test_bad_day_or_staff_values_get_a_friendly_page(
    world: World, params: dict[str, str]
) -> None:
    booking = await book(world, 3, 10)
    page = await _get(world, f"/b/{link(booking['id'])}", **params)
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="error"' in page.text
    assert "Traceback" not in page.text
    assert 'id="booking"' in page.text  # the booking is still there, with today's choices
    assert _times(page.text)


async def test_staff_of_another_service_or_business_is_refused(world: World) -> None:
    booking = await book(world, 3, 10, service=world.colour)  # Giulia and Marco only
    token = link(booking["id"])
    sara = await _get(world, f"/b/{token}", staff=str(world.staff[2]), lang="en")
    assert sara.status_code == 400
    assert "does not offer this service" in sara.text
    assert ">Sara</option>" not in sara.text
    fine = await _get(world, f"/b/{token}", staff=str(world.staff[1]))
    assert fine.status_code == 200
