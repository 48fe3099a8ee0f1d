"""Database access: Piccolo's engine and pool, raw asyncpg where SQL matters.

Services call :func:`transaction` and run SQL on the asyncpg connection it
yields; Piccolo queries inside the block join the same transaction.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine

from booking.errors import Unavailable

# Errors that mean "the database is not there right now", not "your input is bad".
DB_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.TooManyConnectionsError,
    # A connection whose server went away mid-protocol (seen when PostgreSQL
    # shuts down under load: "cannot switch to state 15; another operation is
    # in progress").
    asyncpg.exceptions.InternalClientError,
)


_T = TypeVar("_T")
DEADLOCK_ATTEMPTS = 3


async def retry_deadlocks(
    run: Callable[[], Awaitable[_T]], attempts: int = DEADLOCK_ATTEMPTS
) -> _T:
    """``run()`` again when PostgreSQL chose it as a deadlock victim (SQLSTATE 40P01).

    Two writers waiting on each other's uncommitted allocations under the exclusion
    constraint (two desks moving two bookings into one slot) can deadlock; PostgreSQL
    aborts one. That is no error of the caller's: the transaction is run again, and
    now sees the other writer's committed answer (the time is taken -> 409 with
    alternatives, or free). Never inside an outer transaction: that one is aborted and
    only its owner may start again.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await run()
        except asyncpg.exceptions.DeadlockDetectedError:
            if attempt == attempts or in_transaction():
                raise
            await asyncio.sleep(random.uniform(0.0, 0.005 * attempt))
    raise AssertionError("unreachable")  # pragma: no cover


_engine: PostgresEngine | None = None


def engine() -> PostgresEngine:
    """piccolo_conf's engine. Found once per process: piccolo's ``engine_finder`` looks
    the conf module up again on every call (~7 us), and a request asks several times
    (``connection``, ``transaction``, ``in_transaction``)."""
    global _engine
    if _engine is None:
        found = engine_finder()
        if not isinstance(found, PostgresEngine):  # pragma: no cover - configuration error
            raise RuntimeError("booking needs a PostgresEngine in piccolo_conf")
        _engine = found
    return _engine


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset on release: nothing beyond what asyncpg always does (roll back an
    open transaction, drop listeners). The app never changes session state (no SET,
    LISTEN, advisory or cursor outside a transaction - use SET LOCAL), so the default
    reset query (``RESET ALL; UNLISTEN *; ...``) would be a round trip per request
    that resets nothing."""


async def start_pool(dsn: str, min_size: int, max_size: int) -> None:
    db = engine()
    db.config = {"dsn": dsn}
    await db.start_connection_pool(min_size=min_size, max_size=max_size, reset=_keep_session)


async def close_pool() -> None:
    db = engine()
    if db.pool is not None:
        await db.close_connection_pool()


@asynccontextmanager
async def transaction() -> AsyncIterator[asyncpg.Connection]:
    """One database transaction; commits on success, rolls back on any error."""
    try:
        async with engine().transaction() as txn:
            yield txn.connection
    except DB_UNAVAILABLE_ERRORS as exc:
        raise Unavailable("The database is unavailable; please retry shortly.") from exc


def in_transaction() -> bool:
    """Whether this task is inside :func:`transaction` (an error there aborts it)."""
    return engine().current_transaction.get() is not None


@asynccontextmanager
async def connection() -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection for reads (autocommit)."""
    db = engine()
    current = db.current_transaction.get()
    if current is not None:
        yield current.connection
        return
    try:
        if db.pool is None:
            conn = await db.get_new_connection()
            try:
                yield conn
            finally:
                await conn.close()
            return
        async with db.pool.acquire() as conn:
            yield conn
    except DB_UNAVAILABLE_ERRORS as exc:
        raise Unavailable("The database is unavailable; please retry shortly.") from exc


def record_to_dict(record: asyncpg.Record | None) -> dict[str, Any] | None:
    return dict(record) if record is not None else None
