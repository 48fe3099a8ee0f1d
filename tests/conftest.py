"""Test session: a real PostgreSQL and Redis from the project's own local stack.

* The stack is started (and DATABASE_URL / REDIS_URL pointed at it) once collection
  shows a test outside tests/unit: ``pytest tests/unit`` (pure rules) starts no server
  and needs none. Nothing here starts a server at import time.

* The schema comes from the migrations, applied once per session to a fresh
  database; every test starts from empty tables (TRUNCATE).
* The API runs as a real server process (uvicorn) on 127.0.0.1, so concurrency
  tests are real concurrent HTTP clients; tests may also call services directly
  through the same database.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support import ROOT, TEST_SECRET, World, build_world, free_port

UNIT_TESTS = ROOT / "tests" / "unit"


def _configure_environment() -> None:
    database_url = os.environ.get("BOOKING_TEST_DATABASE_URL")
    redis_url = os.environ.get("BOOKING_TEST_REDIS_URL")
    if not database_url or not redis_url:
        from booking import localstack

        pg_port, redis_port = localstack.env_ports()
        stack = localstack.ensure_stack(pg_port=pg_port, redis_port=redis_port)
        database_url = database_url or stack.database_url("booking_test")
        redis_url = redis_url or stack.redis_url(1)
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_url


# Settings every test process shares (no server involved).
os.environ["BOOKING_SECRET_KEY"] = TEST_SECRET
os.environ["BOOKING_SMS_BACKEND"] = "console"
# Test receivers listen on 127.0.0.1 over http: the outbound policy's local-development
# setting (tests/security starts a strict API of its own).
os.environ["BOOKING_OUTBOUND_ALLOW_HTTP"] = "1"
os.environ["BOOKING_OUTBOUND_ALLOW_PRIVATE"] = "1"
os.environ.setdefault("BOOKING_LOG_LEVEL", "WARNING")
# The whole suite calls the shared API from one address (127.0.0.1): per-address limits
# for unauthenticated requests and the /b/ pages are off there (tests/security/
# test_rate_limits.py starts an API with them on).
os.environ["BOOKING_ANONYMOUS_RATE_LIMIT_PER_MINUTE"] = "0"
os.environ["BOOKING_PAGE_RATE_LIMIT_PER_MINUTE"] = "0"
os.environ["PICCOLO_CONF"] = "booking.piccolo_conf"


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Start the stack only when a collected test may need it (anything outside
    tests/unit), before any fixture or test runs - as the import-time start did."""
    if any(not item.path.is_relative_to(UNIT_TESTS) for item in items):
        _configure_environment()


def _recreate_database(url: str) -> None:
    import asyncpg

    base, _, name = url.rpartition("/")

    async def run() -> None:
        conn = await asyncpg.connect(f"{base}/postgres")
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 "
                "AND pid <> pg_backend_pid()",
                name,
            )
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def database_url() -> str:
    url = os.environ["DATABASE_URL"]
    _recreate_database(url)
    result = subprocess.run(
        [sys.executable, "-m", "booking.cli", "migrate"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return url


@pytest.fixture(scope="session")
async def db_pool(database_url: str) -> AsyncIterator[None]:
    from booking import db

    await db.start_pool(database_url, 2, 30)
    yield
    await db.close_pool()


TABLES = (
    "booking_history, outbox, booking, customer, service_staff, service, time_off, "
    "working_hours, staff, api_key, partner, business"
)


async def _extra_tables() -> list[str]:
    from booking import db

    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'migration'"
        )
    return [row["tablename"] for row in rows]


@pytest.fixture
async def clean_db(db_pool: None) -> AsyncIterator[None]:
    from booking import db
    from booking.access.service import clear_cache

    tables = await _extra_tables()
    async with db.connection() as conn:
        await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    clear_cache()
    return


@pytest.fixture(scope="session")
def api_server(database_url: str) -> Iterator[str]:
    """The API as a real uvicorn process on a free loopback port."""
    port = free_port()
    log_path = ROOT / ".local" / "test-api.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "booking.cli", "api", "--port", str(port), "--quiet"],
            env=dict(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    import httpx

    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("API server did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.1)
    yield base
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
async def world(clean_db: None, api_server: str) -> AsyncIterator[World]:
    """A business in Europe/Rome, three staff, three services and keys for each kind."""
    world = await build_world(api_server)
    yield world
    await world.aclose()
