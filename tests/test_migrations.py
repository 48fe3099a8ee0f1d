"""The schema is made by the migrations, forwards and backwards, and the
exclusion constraint rejects overlapping staff bookings whoever writes them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from uuid import UUID

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
        assert caught.value.constraint_name == "allocation_no_overlap"
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
                    "WHERE conname = 'allocation_no_overlap' AND contype = 'x')"
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


ALLOCATIONS = "2026-12-01T11:00:00:000000"


async def test_allocations_migration_carries_existing_bookings_over_and_back(
    database_url: str,
) -> None:
    """Bookings and time off written under the old schema get their allocations (a
    booking under a later time off loses its own, never two active overlap); rolling back
    restores the old constraint with the bookings intact; forwards again works."""
    url = _scratch_url()
    base, _, name = url.rpartition("/")
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    assert _booking_cli("migrate", url=url).returncode == 0
    back = _booking_cli("migrate", "--backwards", ALLOCATIONS, url=url)
    assert back.returncode == 0, back.stderr

    conn = await asyncpg.connect(url)
    try:
        assert not await conn.fetchval("SELECT to_regclass('allocation') IS NOT NULL")
        business = await conn.fetchval(
            "INSERT INTO business (slug, name, time_zone) VALUES ('old-salon', 'Old', "
            "'Europe/Rome') RETURNING id"
        )
        staff = [
            await conn.fetchval(
                "INSERT INTO staff (business_id, name) VALUES ($1, $2) RETURNING id",
                business,
                who,
            )
            for who in ("Ada", "Bea")
        ]
        service = await conn.fetchval(
            "INSERT INTO service (business_id, name, duration_minutes) VALUES ($1, 'Cut', 30) "
            "RETURNING id",
            business,
        )
        customer = await conn.fetchval(
            "INSERT INTO customer (business_id, name, phone) VALUES ($1, 'Cleo', '+393330000001')"
            " RETURNING id",
            business,
        )
        starts = at(3, 10)
        for code, who, status, minutes in (
            ("OLD001", staff[0], "confirmed", 0),
            ("OLD002", staff[1], "confirmed", 0),
            ("OLD003", staff[0], "cancelled", 0),
            ("OLD004", staff[0], "pending", 60),
        ):
            begins = starts + timedelta(minutes=minutes)
            await conn.execute(
                "INSERT INTO booking (business_id, staff_id, service_id, status, channel, "
                "reference_code, starts_at, ends_at, blocked_from, blocked_until, customer_id) "
                "VALUES ($1, $2, $3, $4, 'front_desk', $5, $6, $7, $6, $7, $8)",
                business,
                who,
                service,
                status,
                code,
                begins,
                begins + timedelta(minutes=30),
                customer,
            )
        # Time off over Bea's booking (today's lost slot).
        await conn.execute(
            "INSERT INTO time_off (business_id, staff_id, starts_at, ends_at) "
            "VALUES ($1, $2, $3, $4)",
            business,
            staff[1],
            starts - timedelta(hours=1),
            starts + timedelta(hours=1),
        )
    finally:
        await conn.close()

    forwards = _booking_cli("migrate", url=url)
    assert forwards.returncode == 0, forwards.stderr
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT b.reference_code, a.kind, a.resource_id, a.active, a.lost, a.during "
            "FROM allocation a LEFT JOIN booking b ON b.id = a.booking_id "
            "ORDER BY a.kind, b.reference_code"
        )
        seen = {(r["reference_code"], r["kind"]): (r["active"], r["lost"]) for r in rows}
        assert seen == {
            (None, "block"): (True, False),
            ("OLD001", "staff"): (True, False),
            ("OLD002", "staff"): (False, True),  # under Bea's time off
            ("OLD003", "staff"): (False, False),  # cancelled
            ("OLD004", "staff"): (True, False),
        }
        assert {r["resource_id"] for r in rows} == set(staff)
        assert await conn.fetchval("SELECT count(*) FROM resource WHERE kind = 'staff'") == 2
        overlapping = await conn.fetchval(
            "SELECT count(*) FROM allocation a JOIN allocation b ON a.resource_id = b.resource_id"
            " AND a.id < b.id AND a.during && b.during WHERE a.active AND b.active"
        )
        assert overlapping == 0
    finally:
        await conn.close()

    back = _booking_cli("migrate", "--backwards", ALLOCATIONS, url=url)
    assert back.returncode == 0, back.stderr
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM booking") == 4
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_constraint WHERE conname = 'booking_no_staff_overlap'"
        )
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_proc WHERE proname = 'booking_insert_current'"
        )
    finally:
        await conn.close()
    again = _booking_cli("migrate", url=url)
    assert again.returncode == 0, again.stderr


# ------------------------------------------- 2026-12-01T12:00: keyed by business (Citus-ready)

_KEYED_BY_BUSINESS = "2026-12-01T12:00:00:000000"

# Rows written the way the schema before that migration allowed: link rows without a
# business, outbox and message rows without one, an inbound SMS pointing at a booking.
_OLD_STYLE_ROWS = """
INSERT INTO business (id, slug, name, time_zone) VALUES
    ('00000000-0000-0000-0000-00000000000a', 'first-salon', 'First', 'Europe/Rome'),
    ('00000000-0000-0000-0000-00000000000b', 'second-salon', 'Second', 'Europe/Rome');
INSERT INTO staff (id, business_id, name) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'Giulia'),
    ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-00000000000b', 'Marco');
INSERT INTO working_hours (business_id, staff_id, weekday, opens_at, closes_at) VALUES
    ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000a1', 1,
     '09:00', '18:00');
INSERT INTO service (id, business_id, name, duration_minutes) VALUES
    ('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-00000000000a', 'Cut', 30),
    ('00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-00000000000b', 'Cut', 30);
INSERT INTO service_staff (service_id, staff_id) VALUES
    ('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000a1'),
    ('00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-0000000000b1');
INSERT INTO customer (id, business_id, name, phone) VALUES
    ('00000000-0000-0000-0000-0000000000a3', '00000000-0000-0000-0000-00000000000a', 'Anna',
     '+393331234567');
INSERT INTO booking (id, business_id, staff_id, service_id, customer_id, status, channel,
    reference_code, starts_at, ends_at, blocked_from, blocked_until, hold_expires_at) VALUES
    ('00000000-0000-0000-0000-0000000000a4', '00000000-0000-0000-0000-00000000000a',
     '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000a2',
     '00000000-0000-0000-0000-0000000000a3', 'confirmed', 'web', 'OLD001',
     '2030-01-07 10:00+00', '2030-01-07 10:30+00', '2030-01-07 10:00+00', '2030-01-07 10:30+00',
     NULL),
    ('00000000-0000-0000-0000-0000000000a5', '00000000-0000-0000-0000-00000000000a',
     '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000a2',
     NULL, 'held', 'system', 'OLD002',
     '2030-01-07 11:00+00', '2030-01-07 11:30+00', '2030-01-07 11:00+00', '2030-01-07 11:30+00',
     '2030-01-01');
INSERT INTO booking_history (booking_id, business_id, event, actor_type, actor_id, channel)
VALUES ('00000000-0000-0000-0000-0000000000a4', '00000000-0000-0000-0000-00000000000a',
        'booking.created', 'system', 'test', 'web');
INSERT INTO outbox (business_id, topic, aggregate_id) VALUES
    (NULL, 'booking.created', '00000000-0000-0000-0000-0000000000a4');
INSERT INTO message (id, business_id, booking_id, customer_id, dedupe_key, template, locale,
    to_phone, body, provider_sid) VALUES
    ('00000000-0000-0000-0000-0000000000a6', NULL, '00000000-0000-0000-0000-0000000000a4',
     '00000000-0000-0000-0000-0000000000a3', 'booking.created:a4:v1', 'confirmation', 'it',
     '+393331234567', 'Ciao', 'SM0001');
INSERT INTO reminder (business_id, booking_id, booking_starts_at, offset_minutes, due_at,
    message_id) VALUES
    ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000a4',
     '2030-01-07 10:00+00', 120, '2030-01-07 08:00+00', '00000000-0000-0000-0000-0000000000a6');
INSERT INTO waitlist_entry (id, business_id, booking_id, earliest, latest, created_by) VALUES
    ('00000000-0000-0000-0000-0000000000a7', '00000000-0000-0000-0000-00000000000a',
     '00000000-0000-0000-0000-0000000000a4', '2030-01-01', '2030-01-06', 'test');
INSERT INTO freed_slot (id, business_id, source_booking_id, staff_id, starts_at, dedupe_key)
VALUES ('00000000-0000-0000-0000-0000000000a8', '00000000-0000-0000-0000-00000000000a',
        '00000000-0000-0000-0000-0000000000a4', '00000000-0000-0000-0000-0000000000a1',
        '2030-01-07 10:00+00', 'freed:a4');
INSERT INTO reschedule_offer (id, business_id, booking_id, kind, expires_at, waitlist_entry_id,
    freed_slot_id) VALUES
    ('00000000-0000-0000-0000-0000000000a9', '00000000-0000-0000-0000-00000000000a',
     '00000000-0000-0000-0000-0000000000a4', 'earlier_slot', '2030-01-01',
     '00000000-0000-0000-0000-0000000000a7', '00000000-0000-0000-0000-0000000000a8');
INSERT INTO reschedule_option (offer_id, position, hold_id, staff_id, starts_at) VALUES
    ('00000000-0000-0000-0000-0000000000a9', 1, '00000000-0000-0000-0000-0000000000a5',
     '00000000-0000-0000-0000-0000000000a1', '2030-01-07 11:00+00');
INSERT INTO promise (business_id, booking_id, kind, subject, nudge_at, due_at) VALUES
    ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000a4',
     'confirmation', 'booking:a4', now() + interval '1 hour', now() + interval '2 hours');
INSERT INTO inbound_message (provider_sid, from_phone, booking_id) VALUES
    ('SM0002', '+393331234567', '00000000-0000-0000-0000-0000000000a4');
"""

_COUNTED = [
    "business", "staff", "working_hours", "service", "service_staff", "customer", "booking",
    "booking_history", "outbox", "message", "reminder", "waitlist_entry", "freed_slot",
    "reschedule_offer", "reschedule_option", "promise", "inbound_message",
]  # fmt: skip


async def _fresh_scratch_database() -> str:
    url = _scratch_url()
    base, _, name = url.rpartition("/")
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return url


async def _counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {table: await conn.fetchval(f"SELECT count(*) FROM {table}") for table in _COUNTED}


async def _primary_key(conn: asyncpg.Connection, table: str) -> str:
    definition: str = await conn.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::regclass "
        "AND contype = 'p'",
        table,
    )
    return definition


async def test_keying_by_business_carries_data_forwards_backwards_and_forwards(
    database_url: str,
) -> None:
    url = await _fresh_scratch_database()
    up = _booking_cli("migrate", url=url)
    assert up.returncode == 0, up.stderr
    down = _booking_cli("migrate", "--backwards", _KEYED_BY_BUSINESS, url=url)
    assert down.returncode == 0, down.stderr
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(_OLD_STYLE_ROWS)
        before = await _counts(conn)
        stamps = dict(await conn.fetch("SELECT id, config_version FROM business"))
    finally:
        await conn.close()

    up = _booking_cli("migrate", url=url)
    assert up.returncode == 0, up.stderr
    conn = await asyncpg.connect(url)
    try:
        assert await _counts(conn) == before
        assert await _primary_key(conn, "booking") == "PRIMARY KEY (business_id, id)"
        assert await _primary_key(conn, "service_staff") == (
            "PRIMARY KEY (business_id, service_id, staff_id)"
        )
        # Backfilled: link rows, the outbox row and the message name their business.
        assert set(
            await conn.fetch("SELECT service_id, business_id FROM service_staff")
        ) == set(await conn.fetch("SELECT id, business_id FROM service"))
        first = UUID("00000000-0000-0000-0000-00000000000a")
        for table in ("reschedule_option", "outbox", "message"):
            assert await conn.fetchval(f"SELECT array_agg(business_id) FROM {table}") == [first]
        # Stamps never go back (a process may remember an older one).
        after = dict(await conn.fetch("SELECT id, config_version FROM business"))
        assert all(after[business] >= stamp for business, stamp in stamps.items())
        # A reference code is unique per business now: the other business may reuse one.
        await conn.execute(
            "INSERT INTO booking (business_id, staff_id, service_id, status, channel, "
            "reference_code, starts_at, ends_at, blocked_from, blocked_until, hold_expires_at) "
            "SELECT business_id, staff_id, service_id, 'held', 'system', 'OLD001', "
            "'2030-01-07 10:00+00', '2030-01-07 10:30+00', '2030-01-07 10:00+00', "
            "'2030-01-07 10:30+00', now() "
            "FROM service_staff WHERE business_id = $1",
            UUID("00000000-0000-0000-0000-00000000000b"),
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "UPDATE booking SET reference_code = 'OLD001' WHERE reference_code = 'OLD002'"
            )
    finally:
        await conn.close()

    # Backwards cannot put back one global reference code space while two share one...
    refused = _booking_cli("migrate", "--backwards", _KEYED_BY_BUSINESS, url=url)
    assert refused.returncode != 0
    assert "booking_reference_code_key" in refused.stdout + refused.stderr
    conn = await asyncpg.connect(url)
    try:
        assert await _primary_key(conn, "booking") == "PRIMARY KEY (business_id, id)"
        await conn.execute(
            "DELETE FROM booking WHERE reference_code = 'OLD001' AND business_id = $1",
            UUID("00000000-0000-0000-0000-00000000000b"),
        )
    finally:
        await conn.close()
    # ... and once they do not, it restores the old keys with every row.
    down = _booking_cli("migrate", "--backwards", _KEYED_BY_BUSINESS, url=url)
    assert down.returncode == 0, down.stderr
    conn = await asyncpg.connect(url)
    try:
        assert await _counts(conn) == before
        assert await _primary_key(conn, "booking") == "PRIMARY KEY (id)"
        assert not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'service_staff' AND column_name = 'business_id')"
        )
        # The sequence stamp continues above every stamp in use.
        await conn.execute("UPDATE business SET name = 'First again' WHERE slug = 'first-salon'")
        bumped = await conn.fetchval(
            "SELECT config_version FROM business WHERE slug = 'first-salon'"
        )
        assert bumped > max(stamps.values())
    finally:
        await conn.close()

    again = _booking_cli("migrate", url=url)
    assert again.returncode == 0, again.stderr
    conn = await asyncpg.connect(url)
    try:
        assert await _counts(conn) == before
        assert await _primary_key(conn, "booking") == "PRIMARY KEY (business_id, id)"
    finally:
        await conn.close()
