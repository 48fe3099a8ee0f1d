"""availability.context.cached_service_context: callers missing the same context at once
share one read (no database: the read is replaced)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from booking.availability import context as contexts
from booking.availability.context import ServiceContext, cached_service_context
from booking.availability.slots import ServiceShape


class Reads:
    """Stands in for load_service_context: counts reads, can be held open or fail."""

    def __init__(self) -> None:
        self.count = 0
        self.gate: asyncio.Event | None = None
        self.fail_first = False

    async def __call__(
        self,
        conn: Any,
        business_id: UUID,
        service_id: UUID,
        *,
        hours_for: Sequence[UUID] | None = None,
    ) -> ServiceContext:
        self.count += 1
        number = self.count
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_first and number == 1:
            raise ConnectionError("connection lost")
        return ServiceContext(
            business_id=business_id,
            service_id=service_id,
            tz=ZoneInfo("Europe/Rome"),
            shape=ServiceShape(duration=timedelta(minutes=30)),
            requires_confirmation=False,
            min_notice=timedelta(0),
            step=timedelta(minutes=30),
            hold_ttl=timedelta(minutes=10),
            eligible_staff=(),
            config_version=number,
        )


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    fake = Reads()
    monkeypatch.setattr(contexts, "load_service_context", fake)
    monkeypatch.setattr(contexts, "_contexts", type(contexts._contexts)())
    monkeypatch.setattr(contexts, "_reading", {})
    return fake


async def test_callers_missing_at_once_share_one_read_then_it_is_remembered(
    reads: Reads,
) -> None:
    business, service = uuid4(), uuid4()
    reads.gate = asyncio.Event()
    callers = [
        asyncio.create_task(cached_service_context(object(), business, service))  # type: ignore[arg-type]
        for _ in range(6)
    ]
    await asyncio.sleep(0)
    reads.gate.set()
    answers = await asyncio.gather(*callers)
    assert reads.count == 1
    assert {id(context) for context, _ in answers} == {id(answers[0][0])}
    assert [remembered for _, remembered in answers] == [False] + [True] * 5
    again, remembered = await cached_service_context(object(), business, service)  # type: ignore[arg-type]
    assert (again, remembered, reads.count) == (answers[0][0], True, 1)


async def test_a_waiter_reads_for_itself_when_the_shared_read_fails(reads: Reads) -> None:
    business, service = uuid4(), uuid4()
    reads.gate = asyncio.Event()
    reads.fail_first = True
    first = asyncio.create_task(cached_service_context(object(), business, service))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    waiter = asyncio.create_task(cached_service_context(object(), business, service))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    reads.gate.set()
    with pytest.raises(ConnectionError):
        await first
    context, remembered = await waiter
    assert (context.config_version, remembered, reads.count) == (2, False, 2)


async def test_a_read_in_flight_when_the_rules_change_is_not_remembered(reads: Reads) -> None:
    business, service = uuid4(), uuid4()
    reads.gate = asyncio.Event()
    first = asyncio.create_task(cached_service_context(object(), business, service))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    contexts.forget_service_context(business)
    reads.gate.set()
    await first
    _, remembered = await cached_service_context(object(), business, service)  # type: ignore[arg-type]
    assert (remembered, reads.count) == (False, 2)
