"""Findings 2, 4 and 10 of issue 18: limits that hold before anything buffers a body."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from booking import db
from booking.settings import Settings
from tests.security.conftest import StrictApi
from tests.support import World, at

MB = 1024 * 1024


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _bookings() -> int:
    async with db.connection() as conn:
        count: int = await conn.fetchval("SELECT count(*) FROM booking")
    return count


def _bookings_url(world: World) -> str:
    return f"/v1/businesses/{world.business_id}/bookings"


async def test_300_mb_body_with_idempotency_key_does_not_grow_the_process(
    strict_world: World, strict_api: StrictApi
) -> None:
    """Before: the Idempotency-Key middleware read all 300 MB first (103 -> 701 MB)."""
    client = strict_world.client("manager")
    warm = await client.post(_bookings_url(strict_world), json={"warm": "up"})
    assert warm.status_code in (400, 422)
    before = _rss_kib(strict_api.pid)

    async def body() -> AsyncIterator[bytes]:
        chunk = b" " * MB
        for _ in range(300):
            yield chunk

    status: int | None = None
    try:
        answer = await client.post(
            _bookings_url(strict_world),
            content=body(),  # chunked: no Content-Length, the server must count
            headers={"Idempotency-Key": "big-1", "Content-Type": "application/json"},
        )
        status = answer.status_code
        assert answer.json()["type"].endswith("too-large")
    except httpx.HTTPError:
        pass  # the server may close the connection after its 413, mid-upload
    after = _rss_kib(strict_api.pid)
    assert after - before < 20 * 1024, f"RSS grew {before} -> {after} KiB"
    assert status in (413, None)
    # The connection was answered or closed; the process still serves.
    assert (await strict_world.client("manager").get("/health")).status_code == 200


async def test_declared_content_length_over_the_limit_is_refused_unread(world: World) -> None:
    client = world.client("manager")
    limit = Settings().max_body_bytes
    answer = await client.post(
        _bookings_url(world),
        content=b"{" + b" " * limit + b"}",
        headers={"Idempotency-Key": "big-2", "Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("application/problem+json")


async def test_deep_json_is_a_4xx_problem_not_a_500(world: World) -> None:
    client = world.client("manager")
    before = await _bookings()
    for deep in ("[" * 1000 + "]" * 1000, '{"a":' * 1000 + "1" + "}" * 1000):
        answer = await client.post(
            _bookings_url(world), content=deep, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["type"].endswith("malformed-request")
    # Brackets inside strings do not count; an ordinary body still books.
    body = world.booking_body(at(2, 10), name="[[[[[[[[[[" * 5 + "{" * 40)
    answer = await client.post(_bookings_url(world), json=body)
    assert answer.status_code == 201, answer.text
    assert await _bookings() == before + 1


async def test_json_sent_as_text_plain_is_415_and_writes_nothing(world: World) -> None:
    client = world.client("manager")
    before = await _bookings()
    raw = json.dumps(world.booking_body(at(2, 11)))
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        answer = await client.post(_bookings_url(world), content=raw, headers=headers)
        assert answer.status_code == 415, (content_type, answer.text)
        assert answer.json()["type"].endswith("unsupported-media-type")
    assert await _bookings() == before
    ok = await client.post(
        _bookings_url(world),
        content=raw,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 201, ok.text
    assert await _bookings() == before + 1
