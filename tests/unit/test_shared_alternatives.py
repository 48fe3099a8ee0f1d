"""placing.slot_taken: the losers of a race share one alternatives search, and an answer
is never older than the request it answers (no database: the search is replaced)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from booking.access.principal import Principal
from booking.availability.context import ServiceContext
from booking.availability.slots import ServiceShape
from booking.bookings import placing

WHEN = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)
DESK = Principal(kind="admin", id="test")


def _context() -> ServiceContext:
    return ServiceContext(
        business_id=uuid4(),
        service_id=uuid4(),
        tz=ZoneInfo("Europe/Rome"),
        shape=ServiceShape(duration=timedelta(minutes=30)),
        requires_confirmation=False,
        min_notice=timedelta(0),
        step=timedelta(minutes=30),
        hold_ttl=timedelta(minutes=10),
        eligible_staff=(uuid4(),),
    )


class Searches:
    """Stands in for placing._alternatives: counts searches, can be held open."""

    def __init__(self) -> None:
        self.connections: list[object] = []
        self.gate: asyncio.Event | None = None
        self.fail: Exception | None = None

    async def __call__(
        self,
        context: ServiceContext,
        starts_at: datetime,
        principal: Principal,
        exclude_booking: UUID | None,
        conn: object,
    ) -> list[dict[str, Any]]:
        self.connections.append(conn)
        number = len(self.connections)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return [{"search": number}]


@pytest.fixture
def searches(monkeypatch: pytest.MonkeyPatch) -> Searches:
    fake = Searches()
    monkeypatch.setattr(placing, "_alternatives", fake)
    monkeypatch.setattr(placing, "_searches", {})
    return fake


async def test_a_finished_search_answers_only_requests_that_began_before_it(
    searches: Searches,
) -> None:
    context = _context()
    began = time.monotonic()
    first = await placing.slot_taken(context, WHEN, DESK, asked_at=began)
    # Began before that search did: its answer is newer than the request.
    same = await placing.slot_taken(context, WHEN, DESK, asked_at=began)
    # Began after it: searched again; so is a caller that says nothing.
    later = await placing.slot_taken(context, WHEN, DESK, asked_at=time.monotonic())
    unknown = await placing.slot_taken(context, WHEN, DESK)
    answers = [e.extra["alternatives"] for e in (first, same, later, unknown)]
    assert answers == [[{"search": 1}], [{"search": 1}], [{"search": 2}], [{"search": 3}]]
    other_time = await placing.slot_taken(context, WHEN + timedelta(hours=1), DESK, asked_at=began)
    assert other_time.extra["alternatives"] == [{"search": 4}]


async def test_losers_asking_while_a_search_runs_share_it_on_the_first_loser_connection(
    searches: Searches,
) -> None:
    context = _context()
    searches.gate = asyncio.Event()
    mine = object()
    first = asyncio.create_task(placing.slot_taken(context, WHEN, DESK, conn=mine))
    await asyncio.sleep(0)
    rest = [
        asyncio.create_task(
            placing.slot_taken(context, WHEN, DESK, conn=object(), asked_at=time.monotonic())
        )
        for _ in range(5)
    ]
    await asyncio.sleep(0)
    searches.gate.set()
    answers = await asyncio.gather(first, *rest)
    assert searches.connections == [mine]  # one search, on the connection of who started it
    assert all(a.extra["alternatives"] == [{"search": 1}] for a in answers)


async def test_a_failed_search_fails_its_waiters_and_is_not_reused(searches: Searches) -> None:
    context = _context()
    searches.gate = asyncio.Event()
    searches.fail = RuntimeError("database gone")
    began = time.monotonic()
    first = asyncio.create_task(placing.slot_taken(context, WHEN, DESK, asked_at=began))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(placing.slot_taken(context, WHEN, DESK, asked_at=began))
    await asyncio.sleep(0)
    searches.gate.set()
    for task in (first, waiter):
        with pytest.raises(RuntimeError, match="database gone"):
            await task
    searches.fail, searches.gate = None, None
    again = await placing.slot_taken(context, WHEN, DESK, asked_at=began)
    assert again.extra["alternatives"] == [{"search": 2}]


async def test_a_waiter_searches_itself_when_the_request_running_the_search_goes_away(
    searches: Searches,
) -> None:
    context = _context()
    searches.gate = asyncio.Event()
    first = asyncio.create_task(placing.slot_taken(context, WHEN, DESK))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(placing.slot_taken(context, WHEN, DESK))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    searches.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    answer = await waiter
    assert answer.extra["alternatives"] == [{"search": 2}]
