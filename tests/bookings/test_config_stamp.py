"""The remembered-rules stamp (``business.config_version``) without a global sequence.

Each rule table's own trigger bumps its business's row, ``config_version + 1``, in
the same transaction (migration 2026-12-01T12:00): a plain, deterministic update of
one row that on Citus lives in the same shard group as the change. These tests
change every rule table by raw SQL, as an operator in psql would.
"""

from __future__ import annotations

from uuid import UUID, uuid4

import asyncpg
import pytest

from booking import db
from tests.support import World

# One raw change per rule table ($1 = the business). The list must name every table
# whose trigger bumps the stamp (checked against the catalog below).
CHANGES: dict[str, list[str]] = {
    "business": ["UPDATE business SET change_cutoff_minutes = 30 WHERE id = $1"],
    "service": [
        "INSERT INTO service (business_id, name, duration_minutes) VALUES ($1, 'New', 15)",
        "UPDATE service SET duration_minutes = 45 WHERE business_id = $1 AND name = 'Cut'",
        "DELETE FROM service WHERE business_id = $1 AND name = 'Consult'",
    ],
    "staff": [
        "INSERT INTO staff (business_id, name) VALUES ($1, 'Nuovo')",
        "UPDATE staff SET active = false WHERE business_id = $1 AND name = 'Sara'",
    ],
    "service_staff": [
        "INSERT INTO service_staff (business_id, service_id, staff_id) "
        "SELECT $1, sv.id, st.id FROM service sv, staff st WHERE sv.business_id = $1 "
        "AND st.business_id = $1 AND sv.name = 'Consult' AND st.name = 'Giulia'",
        "DELETE FROM service_staff WHERE business_id = $1 AND service_id IN "
        "(SELECT id FROM service WHERE business_id = $1 AND name = 'Colour')",
    ],
    "working_hours": [
        "INSERT INTO working_hours (business_id, staff_id, weekday, opens_at, closes_at) "
        "SELECT $1, id, 0, '19:00', '20:00' FROM staff WHERE business_id = $1 LIMIT 1",
        "UPDATE working_hours SET closes_at = '17:00' WHERE business_id = $1 AND weekday = 2",
        "DELETE FROM working_hours WHERE business_id = $1 AND weekday = 3",
    ],
    "resource": [
        "INSERT INTO resource (business_id, kind, name, group_name) "
        "VALUES ($1, 'room', 'Cabin 9', 'cabin')",
        "UPDATE resource SET active = false WHERE business_id = $1 AND name = 'Sara'",
    ],
    "staff_hours_exception": [
        "INSERT INTO staff_hours_exception (business_id, staff_id, day) "
        "SELECT $1, id, current_date + 3 FROM staff WHERE business_id = $1 LIMIT 1",
    ],
}


async def _stamp(conn: asyncpg.Connection, business_id: UUID) -> int:
    stamp: int = await conn.fetchval(
        "SELECT config_version FROM business WHERE id = $1", business_id
    )
    return stamp


async def test_the_list_names_every_table_whose_trigger_bumps_the_stamp(db_pool: None) -> None:
    async with db.connection() as conn:
        bumped = {
            row["table"]
            for row in await conn.fetch(
                "SELECT tgrelid::regclass::text AS table FROM pg_trigger "
                "WHERE tgfoid IN ('business_config_bump'::regproc, "
                "'business_config_touch'::regproc)"
            )
        }
    assert bumped == set(CHANGES)


@pytest.mark.parametrize(
    "change",
    [change for changes in CHANGES.values() for change in changes],
    ids=[f"{table}-{n}" for table, changes in CHANGES.items() for n in range(len(changes))],
)
async def test_a_raw_change_moves_its_business_stamp_in_the_same_transaction(
    world: World, change: str
) -> None:
    async with db.connection() as conn:
        before = await _stamp(conn, world.business_id)
        other = await _stamp(conn, world.other_business_id)
        async with conn.transaction():
            changed = await conn.execute(change, world.business_id)
            rows = int(changed.split()[-1])
            assert rows >= 1, f"{change!r} changed nothing"
            inside = await _stamp(conn, world.business_id)
            # At least one bump per changed row (cascaded deletes of links bump too).
            assert inside >= before + rows
        assert await _stamp(conn, world.business_id) == inside
        assert await _stamp(conn, world.other_business_id) == other


async def test_a_rolled_back_change_leaves_the_stamp(world: World) -> None:
    async with db.connection() as conn:
        before = await _stamp(conn, world.business_id)
        change = conn.transaction()
        await change.start()
        await conn.execute(
            "UPDATE service SET duration_minutes = 20 WHERE business_id = $1", world.business_id
        )
        assert await _stamp(conn, world.business_id) > before
        await change.rollback()
        assert await _stamp(conn, world.business_id) == before


async def test_the_stamp_uses_nothing_global_or_volatile(db_pool: None) -> None:
    """What broke on Citus: nextval() in an UPDATE of a distributed table, and a
    sequence whose copies differ per node. Neither trigger function uses one now."""
    async with db.connection() as conn:
        bodies = await conn.fetch(
            "SELECT pg_get_functiondef(oid) AS body FROM pg_proc "
            "WHERE proname IN ('business_config_bump', 'business_config_touch')"
        )
        assert len(bodies) == 2
        assert all("nextval" not in row["body"] for row in bodies)
        assert all("config_version + 1" in row["body"] for row in bodies)
        assert not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = 'business_config_version_seq')"
        )


async def test_a_business_created_again_with_the_same_id_gets_a_new_stamp(world: World) -> None:
    business_id = uuid4()
    insert = (
        "INSERT INTO business (id, slug, name, time_zone) "
        "VALUES ($1, 'again-salon', 'Again', 'Europe/Rome')"
    )
    async with db.connection() as conn:
        await conn.execute(insert, business_id)
        first = await _stamp(conn, business_id)
        for minutes in (10, 20, 30):
            await conn.execute(
                "UPDATE business SET change_cutoff_minutes = $2 WHERE id = $1",
                business_id,
                minutes,
            )
        seen = set(range(first, await _stamp(conn, business_id) + 1))
        await conn.execute("DELETE FROM business WHERE id = $1", business_id)
        await conn.execute(insert, business_id)
        assert await _stamp(conn, business_id) not in seen
