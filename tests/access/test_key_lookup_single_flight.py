"""When a busy key's cache entry expires, the requests in flight share one lookup."""

from __future__ import annotations

import asyncio

import pytest

from booking.access import service as access_service
from booking.access.principal import Principal
from booking.access.service import authenticate, clear_cache
from booking.errors import Unauthenticated
from tests.support import World


def _count_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    original = access_service._principal_for_key

    async def counting(secret: str) -> Principal | None:
        seen.append(secret)
        await asyncio.sleep(0.05)  # keep it open while the other callers arrive
        return await original(secret)

    monkeypatch.setattr(access_service, "_principal_for_key", counting)
    return seen


async def test_concurrent_callers_share_one_database_lookup(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _count_lookups(monkeypatch)
    clear_cache()
    key = world.keys["front_desk"]
    principals = await asyncio.gather(*(authenticate(key, "unused") for _ in range(20)))
    assert len(seen) == 1
    assert {p.id for p in principals} == {principals[0].id}
    assert principals[0].kind == "staff"
    assert not access_service._inflight  # nothing left behind
    await authenticate(key, "unused")  # now cached
    assert len(seen) == 1


async def test_an_unknown_key_is_refused_to_every_waiter(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _count_lookups(monkeypatch)
    clear_cache()
    answers = await asyncio.gather(
        *(authenticate("bk_000000000000_not-a-real-key", "unused") for _ in range(10)),
        return_exceptions=True,
    )
    assert len(seen) == 1
    assert all(isinstance(answer, Unauthenticated) for answer in answers)
    assert not access_service._inflight


async def test_a_cancelled_waiter_does_not_cancel_the_lookup_for_the_others(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _count_lookups(monkeypatch)
    clear_cache()
    key = world.keys["front_desk"]
    first = asyncio.ensure_future(authenticate(key, "unused"))
    second = asyncio.ensure_future(authenticate(key, "unused"))
    await asyncio.sleep(0.01)
    first.cancel()
    principal = await second
    assert principal.kind == "staff"
    assert first.cancelled()
    assert len(seen) == 1
