"""API processes of their own: the strict (production) outbound policy, hardened limits."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

from tests.support import ROOT, World, build_world, free_port


@dataclass(frozen=True)
class StrictApi:
    base_url: str
    pid: int
    port: int


@contextmanager
def own_api(name: str, **settings: str) -> Iterator[StrictApi]:
    """A ``booking api`` process of its own (the test session's environment plus
    ``settings``), on a free port; stopped on exit."""
    port = free_port()
    env = {**os.environ, **settings}
    log_path = ROOT / ".local" / f"test-{name}-api.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "booking.cli", "api", "--port", str(port), "--quiet"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{name} API did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.1)
    try:
        yield StrictApi(base, process.pid, port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def strict_api(database_url: str) -> Iterator[StrictApi]:
    with own_api(
        "strict", BOOKING_OUTBOUND_ALLOW_HTTP="0", BOOKING_OUTBOUND_ALLOW_PRIVATE="0"
    ) as api:
        yield api


@pytest.fixture
async def strict_world(clean_db: None, strict_api: StrictApi) -> AsyncIterator[World]:
    world = await build_world(strict_api.base_url)
    yield world
    await world.aclose()
