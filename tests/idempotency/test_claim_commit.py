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
