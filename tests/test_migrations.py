"""The schema is made by the migrations, forwards and backwards, and the
exclusion constraint rejects overlapping staff bookings whoever writes them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import asyncpg
import pytest

from booking import db
from tests.support import World, at


def _scratch_url() -> str:
    base, _, _ = os.environ["DATABASE_URL"].rpartition("/")
    return f"{base}/booking_migration_check"


def _booking_cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=url)
    return subprocess.run(
        [sys.executable, "-m", "booking.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


async def _insert_raw(conn: asyncpg.Connection, world: World, start_hour: int, code: str) -> None:
    starts = at(3, start_hour)
    await conn.execute(
        """
        INSERT INTO booking (business_id, staff_id, service_id, status, channel,
            reference_code, starts_at, ends_at, blocked_from, blocked_until, hold_expires_at)
        VALUES ($1, $2, $3, 'held', 'system', $4, $5, $6, $5, $6, now() + interval '1 hour')
        """,
        world.business_id,
        world.staff[0],
        world.cut,
        code,
        starts,
        starts + timedelta(minutes=30),
    )


async def test_raw_sql_overlapping_insert_fails_with_23p01(world: World) -> None:
    async with db.connection() as conn:
        await _insert_raw(conn, world, 10, "RAW001")
        with pytest.raises(asyncpg.exceptions.ExclusionViolationError) as caught:
            await _insert_raw(conn, world, 10, "RAW002")
        assert caught.value.sqlstate == "23P01"
        assert caught.value.constraint_name == "booking_no_staff_overlap"
        # Back-to-back is fine: ranges are half-open.
        await _insert_raw(conn, world, 11, "RAW003")
        count = await conn.fetchval("SELECT count(*) FROM booking")
    assert count == 2


async def test_cancelled_rows_do_not_block_raw_inserts(world: World) -> None:
    async with db.connection() as conn:
        await _insert_raw(conn, world, 12, "RAW010")
        await conn.execute("UPDATE booking SET status = 'expired' WHERE reference_code = 'RAW010'")
        await _insert_raw(conn, world, 12, "RAW011")
        assert await conn.fetchval("SELECT count(*) FROM booking") == 2


async def test_history_is_append_only(world: World) -> None:
    async with db.connection() as conn:
        await _insert_raw(conn, world, 13, "RAW020")
        booking_id = await conn.fetchval("SELECT id FROM booking")
        await conn.execute(
            "INSERT INTO booking_history (booking_id, business_id, event, actor_type, actor_id,"
            " channel) VALUES ($1, $2, 'test', 'system', 'test', 'system')",
            booking_id,
            world.business_id,
        )
        with pytest.raises(asyncpg.exceptions.RestrictViolationError):
            await conn.execute("UPDATE booking_history SET event = 'rewritten'")
        with pytest.raises(asyncpg.exceptions.RestrictViolationError):
            await conn.execute("DELETE FROM booking_history")


async def test_migrations_run_forwards_and_backwards_on_an_empty_database(
    database_url: str,
) -> None:
    url = _scratch_url()
    base, _, name = url.rpartition("/")
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()

    async def constraint_exists() -> bool:
        conn = await asyncpg.connect(url)
        try:
            return bool(
                await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM pg_constraint "
                    "WHERE conname = 'booking_no_staff_overlap' AND contype = 'x')"
                )
            )
        finally:
            await conn.close()

    async def app_tables() -> set[str]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'migration'"
            )
            return {row["tablename"] for row in rows}
        finally:
            await conn.close()

    forwards = _booking_cli("migrate", url=url)
    assert forwards.returncode == 0, forwards.stderr
    assert await constraint_exists()
    assert {"booking", "booking_history", "outbox", "business"} <= await app_tables()

    backwards = _booking_cli("migrate", "--backwards", "all", url=url)
    assert backwards.returncode == 0, backwards.stderr
    assert not await constraint_exists()
    assert await app_tables() == set()

    again = _booking_cli("migrate", url=url)
    assert again.returncode == 0, again.stderr
    assert await constraint_exists()
