"""A transaction PostgreSQL rolled back to break a deadlock (40P01) or a serialization
conflict (40001), when its caller did not retry it, is a 503 problem with Retry-After:
nothing was written and the same request again will see the other writer's outcome.
Never a 500."""

from __future__ import annotations

import asyncpg
import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from booking.problems import EXCEPTION_HANDLERS


@pytest.mark.parametrize(
    "error", [asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError]
)
def test_a_rolled_back_transaction_is_a_503_problem_to_retry(
    error: type[asyncpg.exceptions.TransactionRollbackError],
) -> None:
    @get("/collide", sync_to_thread=False)
    def collide() -> None:
        raise error("deadlock detected")

    app = Litestar([collide], exception_handlers=EXCEPTION_HANDLERS)
    with TestClient(app) as client:
        answer = client.get("/collide")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert (body["type"], body["status"]) == ("/problems/unavailable", 503)
    assert "retry" in body["detail"]
