"""once_per_transaction: one answer per handler transaction, never carried past it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

from booking.outbox.dispatch import (
    before_commit,
    once_per_transaction,
    run_before_commit,
    transaction_memo,
)


def test_an_answer_is_computed_once_inside_a_transaction_and_again_in_the_next() -> None:
    calls: list[str] = []

    async def ask(key: str) -> str:
        calls.append(key)
        return f"answer {len(calls)}"

    async def run() -> list[str]:
        answers = []
        with transaction_memo():
            answers.append(await once_per_transaction(("q", 1), lambda: ask("q1")))
            answers.append(await once_per_transaction(("q", 1), lambda: ask("q1")))
            answers.append(await once_per_transaction(("q", 2), lambda: ask("q2")))
        with transaction_memo():  # the next transaction asks again
            answers.append(await once_per_transaction(("q", 1), lambda: ask("q1")))
        # Outside a handler transaction nothing is remembered.
        answers.append(await once_per_transaction(("q", 1), lambda: ask("q1")))
        answers.append(await once_per_transaction(("q", 1), lambda: ask("q1")))
        return answers

    answers = asyncio.run(run())

    assert calls == ["q1", "q2", "q1", "q1", "q1"]
    assert answers == ["answer 1", "answer 1", "answer 2", "answer 3", "answer 4", "answer 5"]


def test_a_failed_question_is_not_remembered() -> None:
    calls = 0

    async def flaky() -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("lost")
        return True

    async def run() -> bool:
        with transaction_memo():
            with contextlib.suppress(ConnectionError):
                await once_per_transaction("q", flaky)
            return await once_per_transaction("q", flaky)

    assert asyncio.run(run()) is True
    assert calls == 2


def test_work_handed_to_before_commit_runs_once_with_every_item_at_the_end() -> None:
    flushed: list[list[int]] = []

    async def flush(conn: Any, items: list[int]) -> None:
        flushed.append(items)

    conn = cast(Any, object())

    async def run() -> None:
        with transaction_memo():
            for item in (1, 2, 3):
                await before_commit(conn, flush, item)
            assert flushed == []  # nothing yet: the relay runs it before it commits
            await run_before_commit(conn)
            await run_before_commit(conn)  # nothing is run twice
        await before_commit(conn, flush, 4)  # outside a handler transaction: now

    asyncio.run(run())

    assert flushed == [[1, 2, 3], [4]]
