"""Busy times in (issue 13): a member of staff's outside calendars and what they block.

* ``calendar_connection``: an ICS URL (read-only subscription) or a CalDAV collection of
  one member of staff, with its sync state: the source's version (ETag, sync-token or
  ctag), a hash of what was read, when the events were last expanded, and the status a
  manager sees (last attempt, last success, last error).
* A busy occurrence is a ``time_off`` row tagged with its connection and a stable
  event key, so the existing trigger makes it a block allocation under
  ``allocation_no_overlap``; one row per (connection, key). Deleting a connection takes
  its rows with it (the delete trigger gives covered time back).
* ``calendar_written``: which booking was written back to which CalDAV calendar, at
  which version, so a rerun neither duplicates nor forgets one.

Keyed by business like every tenant table. Self-contained: raw SQL only.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T02:31:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "calendar_connection, calendar busy time as time_off blocks, calendar_written"

FORWARDS = [
    """
    CREATE TABLE calendar_connection (
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        staff_id uuid NOT NULL,
        kind text NOT NULL CHECK (kind IN ('ics', 'caldav')),
        url text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
        username text NOT NULL DEFAULT '',
        password text NOT NULL DEFAULT '',
        email text,
        write_back boolean NOT NULL DEFAULT false CHECK (NOT write_back OR kind = 'caldav'),
        source_version text,
        content_hash text,
        expanded_at timestamptz,
        last_attempt_at timestamptz,
        last_success_at timestamptz,
        last_error text,
        last_error_at timestamptz,
        next_sync_at timestamptz NOT NULL DEFAULT now(),
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (business_id, id),
        FOREIGN KEY (business_id, staff_id) REFERENCES staff (business_id, id) ON DELETE CASCADE
    )
    """,
    "CREATE INDEX calendar_connection_due_idx ON calendar_connection (next_sync_at)",
    "ALTER TABLE time_off ADD COLUMN calendar_connection_id uuid, "
    "ADD COLUMN calendar_event_key text, "
    "ADD CONSTRAINT time_off_calendar_tagged "
    "CHECK ((calendar_connection_id IS NULL) = (calendar_event_key IS NULL)), "
    "ADD CONSTRAINT time_off_calendar_connection_fkey "
    "FOREIGN KEY (business_id, calendar_connection_id) "
    "REFERENCES calendar_connection (business_id, id) ON DELETE CASCADE",
    "CREATE UNIQUE INDEX time_off_calendar_event_key ON time_off "
    "(business_id, calendar_connection_id, calendar_event_key) "
    "WHERE calendar_connection_id IS NOT NULL",
    """
    CREATE TABLE calendar_written (
        business_id uuid NOT NULL,
        connection_id uuid NOT NULL,
        booking_id uuid NOT NULL,
        version integer NOT NULL,
        written_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (business_id, connection_id, booking_id),
        FOREIGN KEY (business_id, connection_id) REFERENCES calendar_connection (business_id, id)
            ON DELETE CASCADE,
        FOREIGN KEY (business_id, booking_id) REFERENCES booking (business_id, id)
            ON DELETE CASCADE
    )
    """,
    "CREATE INDEX calendar_written_booking_idx ON calendar_written (business_id, booking_id)",
]

BACKWARDS = [
    "DROP TABLE calendar_written",
    "DELETE FROM time_off WHERE calendar_connection_id IS NOT NULL",
    "DROP INDEX time_off_calendar_event_key",
    "ALTER TABLE time_off DROP CONSTRAINT time_off_calendar_connection_fkey, "
    "DROP CONSTRAINT time_off_calendar_tagged, DROP COLUMN calendar_event_key, "
    "DROP COLUMN calendar_connection_id",
    "DROP TABLE calendar_connection",
]


async def _run_all(statements: list[str]) -> None:
    engine = engine_finder()
    assert engine is not None
    async with engine.transaction() as txn:
        for statement in statements:
            await txn.connection.execute(statement)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="booking", description=DESCRIPTION)

    async def run() -> None:
        await _run_all(FORWARDS)

    async def run_backwards() -> None:
        await _run_all(BACKWARDS)

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
