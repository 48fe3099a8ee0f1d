"""CalDAV passwords are sealed at rest (issue 18's encryption, issue 13's leftover): the
table never holds the password, a sync still opens the calendar with it, and the
migration seals existing plain passwords (backwards restores them)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import asyncpg

from booking import db
from booking.settings import Settings
from booking.webhooks import secrets
from tests.calendars.helpers import calendar, connect, event, radicale_calendar, save_event
from tests.processes import drop_database, fresh_database, minimal_env, run, server_url
from tests.support import World, at

MIGRATION_ID = "2026-12-02T04:00:00:000000"
PASSWORD = "caldav-pw-Zq81"


async def test_the_table_holds_no_password_and_a_sync_still_reads(
    world: World, radicale: str
) -> None:
    url, user = await radicale_calendar(radicale)
    await save_event(url, user, calendar(event("gym", at(3, 9), at(3, 10))))
    response = await connect(
        world, world.staff[0], kind="caldav", url=url, username=user, password=PASSWORD
    )
    assert response.status_code == 201, response.text
    assert PASSWORD not in response.text
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT c::text AS whole, password_sealed, last_error FROM calendar_connection c"
        )
        blocks = await conn.fetchval(
            "SELECT count(*) FROM time_off WHERE calendar_connection_id IS NOT NULL"
        )
    assert row is not None
    assert row["last_error"] is None
    assert PASSWORD not in row["whole"]
    assert secrets.unseal(row["password_sealed"]) == PASSWORD
    assert blocks == 1  # the sync opened the calendar with the unsealed password


def test_the_migration_seals_existing_passwords(database_url: str, tmp_path: Path) -> None:
    server = server_url(database_url)
    url = fresh_database(server, "booking_caldav_migration")
    key = "migration-test-secret-key"
    env = minimal_env(DATABASE_URL=url, REDIS_URL=os.environ["REDIS_URL"], BOOKING_SECRET_KEY=key)

    async def sql(statement: str, fetch: bool = False) -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await (conn.fetchval if fetch else conn.execute)(statement)
        finally:
            await conn.close()

    try:
        assert run(["migrate"], env, tmp_path).returncode == 0
        back = run(["migrate", "--backwards", MIGRATION_ID], env, tmp_path)
        assert back.returncode == 0, back.stdout + back.stderr
        asyncio.run(
            sql(
                "WITH b AS (INSERT INTO business (slug, name, time_zone) VALUES "
                "('old', 'Old', 'Europe/Rome') RETURNING id), s AS (INSERT INTO staff "
                "(business_id, name) SELECT id, 'Ada' FROM b RETURNING business_id, id) "
                "INSERT INTO calendar_connection (business_id, staff_id, kind, url, username, "
                "password, created_by) SELECT business_id, id, 'caldav', "
                f"'https://dav.example/c/', 'ada', '{PASSWORD}', 'x' FROM s"
            )
        )
        forward = run(["migrate"], env, tmp_path)
        assert forward.returncode == 0, forward.stdout + forward.stderr
        sealed = asyncio.run(sql("SELECT password_sealed FROM calendar_connection", fetch=True))
        assert PASSWORD not in sealed
        assert secrets.unseal(sealed, Settings(secret_key=key)) == PASSWORD
        back = run(["migrate", "--backwards", MIGRATION_ID], env, tmp_path)
        assert back.returncode == 0, back.stdout + back.stderr
        plain = asyncio.run(sql("SELECT password FROM calendar_connection", fetch=True))
        assert plain == PASSWORD
    finally:
        drop_database(server, "booking_caldav_migration")
