"""Fixtures for notification tests: a fake Twilio, an API that knows its auth token,
and a real arq worker (burst mode, in-process) whose Twilio sender talks to the fake.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from booking import db
from booking.settings import Settings
from booking.worker import build_worker
from tests.fakes.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.support import ROOT, free_port

FROM_NUMBER = "+15005550006"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as server:
        yield server


@pytest.fixture(scope="session")
def twilio_api(database_url: str) -> Iterator[str]:
    """The API as its own process, configured with Twilio's auth token and its public URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update(
        TWILIO_ACCOUNT_SID=DEFAULT_ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=DEFAULT_AUTH_TOKEN,
        TWILIO_FROM_NUMBER=FROM_NUMBER,
        BOOKING_PUBLIC_BASE_URL=base,
    )
    log_path = ROOT / ".local" / "test-api-notifications.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "booking.cli", "api", "--port", str(port), "--quiet"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("API did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.1)
    yield base
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
async def redis() -> AsyncIterator[ArqRedis]:
    """The test Redis database, emptied so no job from another test is left over."""
    pool = await create_pool(RedisSettings.from_dsn(os.environ["REDIS_URL"]))
    await pool.flushdb()
    yield pool
    await pool.aclose()


@dataclass
class Pipeline:
    settings: Settings
    fake: FakeTwilio
    api: str

    async def run_worker(
        self, *, redis_url: str | None = None, max_burst_jobs: int = -1, **ctx: Any
    ) -> int:
        """A real arq Worker in burst mode until its queue is empty; jobs completed."""
        settings = self.settings
        if redis_url is not None:
            settings = settings.with_overrides(redis_url=redis_url)
        context: dict[str, Any] = {
            "settings": settings,
            "sms_backoff_base": 0.05,
            "outbox_poll_interval": 0,  # the startup relay is enough in burst mode
        }
        context.update(ctx)
        worker = build_worker(
            settings,
            burst=True,
            poll_delay=0,
            handle_signals=False,
            ctx=context,
            max_burst_jobs=max_burst_jobs,
        )
        try:
            await worker.async_run()
        finally:
            await worker.close()
        return worker.jobs_complete


@pytest.fixture
async def pipeline(world: Any, fake: FakeTwilio, twilio_api: str, redis: ArqRedis) -> Pipeline:
    settings = Settings.from_env().with_overrides(
        sms_backend="twilio",
        twilio_account_sid=fake.account_sid,
        twilio_auth_token=fake.auth_token,
        twilio_from_number=FROM_NUMBER,
        twilio_base_url=fake.base_url,
        public_base_url=twilio_api,
    )
    return Pipeline(settings=settings, fake=fake, api=twilio_api)


async def messages(booking_id: Any = None) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT * FROM message WHERE ($1::uuid IS NULL OR booking_id = $1) "
            "ORDER BY created_at, id",
            booking_id,
        )
    return [dict(row) for row in rows]


async def reminders(booking_id: Any) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT * FROM reminder WHERE booking_id = $1 ORDER BY id", booking_id
        )
    return [dict(row) for row in rows]
