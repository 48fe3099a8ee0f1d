"""Apply (or roll back) the Piccolo migrations for the booking app.

Both directions first wait for the database to accept connections (bounded by
``BOOKING_DB_WAIT_SECONDS``, default 60), so ``booking migrate`` can start next to
a database that is still booting (a container, a fresh cluster) without relying on
an orchestrator's health checks.
"""

from __future__ import annotations

import asyncio
import sys
import time
from urllib.parse import urlsplit

import asyncpg

from booking.settings import get_settings

_RETRY_EVERY = 0.5

# "Not there yet": nothing listening, DNS not up, the server starting or shutting down.
_NOT_YET: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.TooManyConnectionsError,
)


class DatabaseNotReady(RuntimeError):
    """The database did not accept connections within the wait."""


def describe(url: str) -> str:
    """host:port/dbname of a database URL, without credentials (for messages)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    return f"{host}:{port}{parts.path or ''}"


async def wait_for_database(url: str, seconds: float) -> None:
    """Return once ``url`` accepts a connection; DatabaseNotReady after ``seconds``.

    Only "not there yet" errors are retried: a wrong password or a missing database
    fails at once, because waiting cannot fix it.
    """
    deadline = time.monotonic() + seconds
    said = False
    while True:
        try:
            conn = await asyncpg.connect(url, timeout=min(5.0, max(seconds, 1.0)))
        except _NOT_YET as exc:
            if time.monotonic() >= deadline:
                raise DatabaseNotReady(
                    f"the database at {describe(url)} did not accept connections within "
                    f"{seconds:g} s (last error: {exc or type(exc).__name__}); check "
                    "DATABASE_URL, or raise BOOKING_DB_WAIT_SECONDS"
                ) from exc
            if not said:
                print(
                    f"booking migrate: waiting up to {seconds:g} s for the database at "
                    f"{describe(url)} ({exc or type(exc).__name__})",
                    file=sys.stderr,
                    flush=True,
                )
                said = True
            await asyncio.sleep(_RETRY_EVERY)
            continue
        await conn.close()
        if said:
            print("booking migrate: the database is up", file=sys.stderr, flush=True)
        return


async def migrate_forwards() -> None:
    settings = get_settings()
    await wait_for_database(settings.database_url, settings.db_wait_seconds)
    from piccolo.apps.migrations.commands.forwards import run_forwards

    result = await run_forwards(app_name="booking", migration_id="all")
    if not result.success:
        raise RuntimeError(f"migrations failed: {result.message}")


async def migrate_backwards(migration_id: str = "1") -> None:
    """Roll back to before ``migration_id`` ("1" = the last one, "all" = everything)."""
    settings = get_settings()
    await wait_for_database(settings.database_url, settings.db_wait_seconds)
    from piccolo.apps.migrations.commands.backwards import run_backwards

    result = await run_backwards(app_name="booking", migration_id=migration_id, auto_agree=True)
    if not result.success:
        raise RuntimeError(f"rolling back failed: {result.message}")
