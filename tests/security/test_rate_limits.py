"""Finding 6 of issue 18: requests outside the rate limiter.

An API process of its own with small limits: unauthenticated and failed-authentication
requests per client address, the public ``/b/`` pages per link and per address. Client
addresses come from ``X-Forwarded-For``, which uvicorn trusts from 127.0.0.1 (its default
``FORWARDED_ALLOW_IPS``), so each test floods from an address of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from uuid import uuid4

import httpx
import pytest

from booking.access.ratelimit import WINDOW_SECONDS
from tests.guarantee.helpers import book, link
from tests.security.conftest import StrictApi, own_api
from tests.support import World

ANON_LIMIT = 10
PAGE_LIMIT = 4  # per link; five times that per address


@pytest.fixture(scope="module")
def limited_api(database_url: str) -> Iterator[StrictApi]:
    with own_api(
        "limited",
        BOOKING_ANONYMOUS_RATE_LIMIT_PER_MINUTE=str(ANON_LIMIT),
        BOOKING_PAGE_RATE_LIMIT_PER_MINUTE=str(PAGE_LIMIT),
    ) as api:
        yield api


async def _not_near_window_end(margin: float = 10.0) -> None:
    """Every flood here fits in one counting window (no timing is asserted)."""
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < margin:
        await asyncio.sleep(left + 0.2)


def _address() -> str:
    return f"198.51.100.{uuid4().int % 250 + 1}"


async def _statuses(
    api: StrictApi, path: str, count: int, address: str, headers: dict[str, str] | None = None
) -> list[int]:
    async with httpx.AsyncClient(
        base_url=api.base_url, headers={"X-Forwarded-For": address, **(headers or {})}
    ) as client:
        return [(await client.get(path)).status_code for _ in range(count)]


@pytest.mark.parametrize(
    "credential",
    [
        None,  # no credentials at all
        "bk_notakey_00000000000000000000000000000000",  # an API key that does not exist
        f"bt.{uuid4().hex}.9999999999.forged",  # a forged booking link
    ],
)
async def test_unauthenticated_floods_get_429(
    clean_db: None, limited_api: StrictApi, credential: str | None
) -> None:
    await _not_near_window_end()
    address = _address()
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    path = f"/v1/bookings/{uuid4()}"
    statuses = await _statuses(limited_api, path, ANON_LIMIT + 5, address, headers)
    assert statuses == [401] * ANON_LIMIT + [429] * 5
    async with httpx.AsyncClient(base_url=limited_api.base_url) as client:
        limited = await client.get(path, headers={"X-Forwarded-For": address, **headers})
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert limited.json()["type"] == "/problems/rate-limited"
    assert int(limited.headers["retry-after"]) >= 1
    # Another address is not affected.
    assert await _statuses(limited_api, path, 1, _address(), headers) == [401]


async def test_a_valid_key_from_a_flooding_address_still_works(
    world: World, limited_api: StrictApi
) -> None:
    await _not_near_window_end()
    address = _address()
    path = f"/v1/businesses/{world.business_id}"
    assert (await _statuses(limited_api, path, ANON_LIMIT + 1, address))[-1] == 429
    key = {"Authorization": f"Bearer {world.keys['front_desk']}"}
    assert await _statuses(limited_api, path, 1, address, key) == [200]


async def test_a_customer_page_flood_per_link_gets_429(
    world: World, limited_api: StrictApi
) -> None:
    booking = await book(world, 3, 10, staff=0)
    await _not_near_window_end()
    page = f"/b/{link(booking['id'])}"
    statuses = await _statuses(limited_api, page, PAGE_LIMIT + 2, _address())
    assert statuses == [200] * PAGE_LIMIT + [429] * 2
    # The same link from another address is the same link: still limited.
    assert await _statuses(limited_api, page, 1, _address()) == [429]
    # Another booking's link is not.
    other = await book(world, 3, 12, staff=1)
    assert await _statuses(limited_api, f"/b/{link(other['id'])}", 1, _address()) == [200]


async def test_a_customer_page_flood_per_address_gets_429(
    clean_db: None, limited_api: StrictApi
) -> None:
    """Made-up links, each new: the per-link counter never fills, the address's does."""
    await _not_near_window_end()
    address = _address()
    statuses = []
    async with httpx.AsyncClient(
        base_url=limited_api.base_url, headers={"X-Forwarded-For": address}
    ) as client:
        for _ in range(PAGE_LIMIT * 5 + 3):
            response = await client.get(f"/b/bt.{uuid4().hex}.9999999999.forged")
            statuses.append(response.status_code)
    assert 429 not in statuses[: PAGE_LIMIT * 5]
    assert statuses[PAGE_LIMIT * 5 :] == [429] * 3
