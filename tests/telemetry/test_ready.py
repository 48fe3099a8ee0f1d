"""/ready's outbox-age check: a committed outbox row older than
BOOKING_READY_OUTBOX_MAX_AGE_SECONDS makes /ready answer 503 with a problem that names
the reason; once the worker relays the row, /ready is ready again."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from booking import db
from tests.guarantee.helpers import book, drain
from tests.notifications.fixtures import Pipeline
from tests.security.conftest import own_api
from tests.support import World

MAX_AGE = 5  # seconds, the limit of the API process started here


@pytest.fixture(scope="module")
def strict_api(database_url: str) -> Iterator[str]:
    """An API process whose outbox-age limit is MAX_AGE seconds (the default is 60)."""
    with own_api("ready", BOOKING_READY_OUTBOX_MAX_AGE_SECONDS=str(MAX_AGE)) as api:
        yield api.base_url


async def _age_outbox(seconds: int) -> int:
    async with db.connection() as conn:
        aged: str = await conn.execute(
            "UPDATE outbox SET created_at = now() - make_interval(secs => $1) "
            "WHERE relayed_at IS NULL",
            seconds,
        )
    return int(aged.split()[-1])


async def test_an_old_outbox_row_fails_ready_until_it_is_relayed(
    world: World, pipeline: Pipeline, strict_api: str
) -> None:
    async with httpx.AsyncClient(base_url=strict_api, timeout=10) as probe:
        fresh = await probe.get("/ready")
        assert fresh.status_code == 200, fresh.text
        await book(world, 3, 10)
        # Committed a moment ago: within the limit, still ready.
        young = await probe.get("/ready")
        assert young.status_code == 200, young.text
        assert young.json()["checks"]["outbox"] == "ok"
        # The row has waited longer than the limit (no worker relayed it).
        assert await _age_outbox(MAX_AGE * 4) >= 1
        stalled = await probe.get("/ready")
        assert stalled.status_code == 503, stalled.text
        assert stalled.headers["content-type"].startswith("application/problem+json")
        problem = stalled.json()
        assert problem["type"].endswith("not-ready"), problem
        assert problem["status"] == 503
        assert problem["checks"]["outbox"].startswith("stalled:"), problem
        assert f"limit {MAX_AGE} s" in problem["checks"]["outbox"]
        assert "outbox stalled" in problem["detail"], problem
        assert problem["checks"]["database"] == "ok"
        assert problem["checks"]["redis"] == "ok"
        # The threshold is the setting: the default API (60 s) still calls it ready.
        default = await world.client(None).get("/ready")
        assert default.status_code == 200, default.text
        # The worker relays the row: ready again, nothing else done by hand.
        await drain(pipeline)
        recovered = await probe.get("/ready")
        assert recovered.status_code == 200, recovered.text
        assert recovered.json()["checks"]["outbox"] == "ok"
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE handled_at IS NULL") == 0
