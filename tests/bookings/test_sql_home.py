"""The write path's PL/pgSQL has one current home: ``src/booking/bookings/sql/``.

Each file defines one function of the same name. The live definition (what the
migrations left in the database) must be the file's: the file is created again in a
scratch schema and both ``pg_get_functiondef`` texts are compared, the schema name
being the only difference allowed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from booking import db

SQL_HOME = Path(__file__).parents[2] / "src" / "booking" / "bookings" / "sql"
FILES = sorted(SQL_HOME.glob("*.sql"))
SCRATCH = "sql_home_check"


def test_the_write_functions_have_their_files() -> None:
    names = {path.stem for path in FILES}
    assert {"booking_place", "booking_move", "booking_expire_holds_on"} <= names


async def test_the_old_positional_functions_are_gone(db_pool: None) -> None:
    async with db.connection() as conn:
        left = await conn.fetch(
            "SELECT proname FROM pg_proc WHERE proname IN "
            "('booking_insert_first', 'booking_insert_current', 'booking_move_first')"
        )
    assert left == []


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
async def test_the_live_definition_is_the_files(db_pool: None, path: Path) -> None:
    text = path.read_text()  # noqa: ASYNC240 - a small file, read once
    async with db.transaction() as conn:
        live = await conn.fetchval(
            "SELECT pg_get_functiondef(p.oid) FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' AND p.proname = $1",
            path.stem,
        )
        assert live is not None, f"{path.stem} is not in the database"
        await conn.execute(f"CREATE SCHEMA {SCRATCH}")
        await conn.execute(f"SET LOCAL search_path = {SCRATCH}, public")
        await conn.execute(text)
        written = await conn.fetchval(
            "SELECT pg_get_functiondef(p.oid) FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = $2 AND p.proname = $1",
            path.stem,
            SCRATCH,
        )
        await conn.execute("RESET search_path")
        await conn.execute(f"DROP SCHEMA {SCRATCH} CASCADE")
    assert written.replace(f"{SCRATCH}.", "public.") == live


HOT = (
    "booking_place",
    "booking_move",
    "booking_expire_holds_on",
    "booking_place_seats",
    "booking_allocations_sync",
    "session_seats_sync",
    "booking_segment_sync",
)


@pytest.mark.parametrize("name", HOT)
async def test_the_hot_functions_plan_once_per_connection(db_pool: None, name: str) -> None:
    # A custom plan per call cost booking_expire_holds_on ~0.3 ms of planning per booking.
    async with db.connection() as conn:
        config = await conn.fetchval("SELECT proconfig FROM pg_proc WHERE proname = $1", name)
    assert config == ["plan_cache_mode=force_generic_plan"]
