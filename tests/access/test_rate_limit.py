"""Per-key rate limits answer 429 with Retry-After; other keys are unaffected."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings

from booking.access.ratelimit import WINDOW_SECONDS, hit
from booking.access.service import create_api_key
from booking.errors import RateLimited
from booking.settings import get_settings
from tests.support import World


async def _not_near_window_end(margin: float = 8.0) -> None:
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < margin:
        await asyncio.sleep(left + 0.2)


async def test_a_key_over_its_limit_gets_429_with_retry_after(world: World) -> None:
    tiny = await create_api_key(
        kind="staff", role="front_desk", business_ids=[world.business_id], rate_limit_per_minute=3
    )
    await _not_near_window_end()
    path = f"/v1/businesses/{world.business_id}"
    async with httpx.AsyncClient(
        base_url=world.base_url, headers={"Authorization": f"Bearer {tiny.key}"}
    ) as client:
        answers = [await client.get(path) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    limited = answers[3]
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert limited.json()["type"] == "/problems/rate-limited"
    retry_after = int(limited.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW_SECONDS
    # Another key of the same business is not throttled by this one.
    assert (await world.client("front_desk").get(path)).status_code == 200


async def test_counter_windows_and_off_switch() -> None:
    redis = await create_pool(RedisSettings.from_dsn(get_settings().redis_url))
    subject = f"test:{uuid.uuid4()}"
    try:
        start = 1_000_000 * WINDOW_SECONDS + 10.0
        assert [await hit(redis, subject, 2, now=start + i) for i in range(2)] == [1, 2]
        with pytest.raises(RateLimited) as refused:
            await hit(redis, subject, 2, now=start + 3)
        assert refused.value.extra["retry_after"] == WINDOW_SECONDS - 13
        assert await hit(redis, subject, 2, now=start + WINDOW_SECONDS) == 1  # next window
        assert await hit(redis, subject, 0, now=start) == 0  # 0 = no limit
    finally:
        await redis.aclose()
