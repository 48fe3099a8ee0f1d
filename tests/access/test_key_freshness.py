"""The key cache stays honest cheaply: a revocation reaches a second API process within a
second, and last_used_at is written coalesced, never once per request."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from uuid import UUID

import httpx
import pytest

from booking import db
from booking.access import key_use
from booking.access.service import authenticate, create_api_key
from booking.errors import Unauthenticated
from tests.support import ROOT, TEST_SECRET, World, free_port


@pytest.fixture
def second_api(world: World) -> Iterator[str]:
    """Another API process on the same database (as behind a load balancer)."""
    port = free_port()
    log_path = ROOT / ".local" / "test-api-second.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "booking.cli", "api", "--port", str(port), "--quiet"],
            env=dict(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # a guard against a hung child, not a timing check
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("second API did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.1)
    yield base
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


async def test_a_revocation_reaches_another_api_process_within_a_second(
    world: World, second_api: str
) -> None:
    issued = await create_api_key(
        kind="staff", role="front_desk", business_ids=[world.business_id], name="desk 2"
    )
    path = f"/v1/businesses/{world.business_id}/staff"
    headers = {"Authorization": f"Bearer {issued.key}"}
    async with (
        httpx.AsyncClient(base_url=world.base_url, headers=headers, timeout=30) as first,
        httpx.AsyncClient(base_url=second_api, headers=headers, timeout=30) as second,
    ):
        # Both processes have the key in their cache (a 5 s cache before this change).
        assert (await first.get(path)).status_code == 200
        assert (await second.get(path)).status_code == 200
        revoked = await world.client("manager").post(f"/v1/api-keys/{issued.id}/revoke")
        assert revoked.status_code == 200, revoked.text
        assert (await first.get(path)).status_code == 401  # the revoking process: at once
        await asyncio.sleep(1.0)  # the promise: within one second everywhere
        late = await second.get(path)
    assert late.status_code == 401, late.text
    assert late.headers["content-type"].startswith("application/problem+json")


async def test_last_used_at_is_written_coalesced_not_per_request(
    clean_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with db.connection() as conn:
        business_id = await conn.fetchval(
            "INSERT INTO business (slug, name, time_zone) VALUES ('lu', 'LU', 'UTC') RETURNING id"
        )
    issued = await create_api_key(kind="staff", role="manager", business_ids=[business_id])
    other = await create_api_key(kind="admin", name="ops")

    async def last_used() -> dict[UUID, object]:
        async with db.connection() as conn:
            rows = await conn.fetch("SELECT id, last_used_at FROM api_key")
        return {row["id"]: row["last_used_at"] for row in rows}

    monkeypatch.setattr(key_use, "LAST_USED_FLUSH_SECONDS", 3600.0)
    for _ in range(50):
        await authenticate(issued.key, TEST_SECRET)
    await authenticate(other.key, TEST_SECRET)
    assert set((await last_used()).values()) == {None}  # 51 requests, no write yet
    assert await key_use.flush_last_used() == 2  # one UPDATE for both keys
    first = await last_used()
    assert first[issued.id] is not None
    assert first[other.id] is not None
    assert await key_use.flush_last_used() == 0  # nothing new, nothing written

    # When the interval has passed, the next request writes in the background.
    monkeypatch.setattr(key_use, "LAST_USED_FLUSH_SECONDS", 0.0)
    await authenticate(issued.key, TEST_SECRET)
    await authenticate(issued.key, TEST_SECRET)
    await key_use.drain()
    second = await last_used()
    assert second[issued.id] > first[issued.id]  # type: ignore[operator]
    assert second[other.id] == first[other.id]


async def test_a_failed_revocation_read_keeps_the_key_cache(
    clean_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database blip during the periodic revoked-key count does not fail authentication:
    the cached key still authenticates, the read is retried after the interval (not on
    every request), and a revocation is seen once the read works again."""
    issued = await create_api_key(kind="admin", name="blip")
    assert (await authenticate(issued.key, TEST_SECRET)).id == str(issued.id)  # cached

    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        raise ConnectionResetError("the database went away")

    real = key_use._count_revoked
    monkeypatch.setattr(key_use, "_count_revoked", failing)
    monkeypatch.setattr(key_use, "REVOCATION_CHECK_SECONDS", 3600.0)
    monkeypatch.setattr(key_use, "_revocations_checked_at", float("-inf"))  # due now
    for _ in range(20):
        principal = await authenticate(issued.key, TEST_SECRET)
        assert principal.id == str(issued.id)
    assert calls == 1  # one failed read, then the cache until the interval passes

    # The database back, a revocation elsewhere is seen on the next read.
    monkeypatch.setattr(key_use, "_count_revoked", real)
    async with db.connection() as conn:
        await conn.execute("UPDATE api_key SET revoked_at = now() WHERE id = $1", issued.id)
    monkeypatch.setattr(key_use, "_revocations_checked_at", float("-inf"))
    with pytest.raises(Unauthenticated, match="revoked"):
        await authenticate(issued.key, TEST_SECRET)
