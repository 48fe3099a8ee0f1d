"""The claim commits without waiting for its WAL flush, for its own statement only."""

from __future__ import annotations

from contextlib import AsyncExitStack

from booking import db
from booking.idempotency import service


async def test_a_claim_is_committed_and_leaves_the_session_as_it_found_it(
    clean_db: None,
) -> None:
    outcome = await service.claim("p", "k", "POST", "/x", b"{}")
    assert isinstance(outcome, service.Claimed)
    async with AsyncExitStack() as stack:
        # asyncpg's pool hands out the connection released last first; take a few.
        conns = [await stack.enter_async_context(db.connection()) for _ in range(3)]
        for conn in conns:
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
        assert (
            await conns[1].fetchval(
                "SELECT state FROM idempotency_record WHERE principal = 'p' AND key = 'k'"
            )
            == "in_progress"
        )
    await service.complete("p", "k", outcome.owner, 200, {}, b"{}")
    again = await service.claim("p", "k", "POST", "/x", b"{}")
    assert isinstance(again, service.StoredAnswer)


async def test_a_claim_reads_what_its_caller_needs_next_in_the_same_statement(
    clean_db: None,
) -> None:
    read = ("SELECT $9::text AS asked, $10::int + 1 AS next", ("hello", 41))
    outcome = await service.claim("p", "r", "POST", "/x", b"{}", read=read)
    assert isinstance(outcome, service.Claimed)
    assert outcome.read is not None
    assert (outcome.read["asked"], outcome.read["next"]) == ("hello", 42)
    twin = await service.claim("p", "r", "POST", "/x", b"{}", read=read)
    assert isinstance(twin, service.InProgress)  # the claim is taken: nothing to read
    async with db.connection() as conn:
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
    await service.complete("p", "r", outcome.owner, 200, {}, b'{"ok":1}')
    again = await service.claim("p", "r", "POST", "/x", b"{}", read=read)
    assert isinstance(again, service.StoredAnswer)
    assert again.body == b'{"ok":1}'
