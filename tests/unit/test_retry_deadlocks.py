"""db.retry_deadlocks: a deadlock victim's write runs again; other errors do not."""

from __future__ import annotations

import asyncpg
import pytest

from booking import db


def _deadlock() -> asyncpg.exceptions.DeadlockDetectedError:
    return asyncpg.exceptions.DeadlockDetectedError("deadlock detected")


async def test_a_deadlock_victim_runs_again_and_returns_the_second_answer() -> None:
    calls: list[int] = []

    async def run() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise _deadlock()
        return "moved"

    assert await db.retry_deadlocks(run) == "moved"
    assert len(calls) == 2


async def test_gives_up_after_the_last_attempt_with_the_deadlock() -> None:
    calls: list[int] = []

    async def run() -> str:
        calls.append(1)
        raise _deadlock()

    with pytest.raises(asyncpg.exceptions.DeadlockDetectedError):
        await db.retry_deadlocks(run, attempts=3)
    assert len(calls) == 3


async def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    async def run() -> str:
        calls.append(1)
        raise asyncpg.exceptions.ExclusionViolationError("taken")

    with pytest.raises(asyncpg.exceptions.ExclusionViolationError):
        await db.retry_deadlocks(run)
    assert len(calls) == 1
