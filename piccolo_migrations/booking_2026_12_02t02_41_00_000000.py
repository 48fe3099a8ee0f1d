"""Recurring series (issue 12): ``booking_series`` and ``booking.series_id``.

A series is N ordinary bookings of one service on a rule (RFC 5545 RRULE or a list of
dates); each occurrence is a booking of its own with its own reference code,
reminders and history, and carries the series' id. The series row keeps the rule as
given, the mode (``all_or_nothing`` / ``skip_conflicts``) and how many occurrences the
rule produced (at most 52). Backwards drops both. Self-contained: raw SQL only.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T02:41:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "recurring series: booking_series table, booking.series_id"

FORWARDS = [
    """
    CREATE TABLE booking_series (
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        service_id uuid NOT NULL,
        rule text NOT NULL CHECK (length(rule) BETWEEN 1 AND 5000),
        mode text NOT NULL CHECK (mode IN ('all_or_nothing', 'skip_conflicts')),
        occurrences integer NOT NULL CHECK (occurrences BETWEEN 1 AND 52),
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (business_id, id),
        FOREIGN KEY (business_id, service_id) REFERENCES service (business_id, id)
    )
    """,
    "ALTER TABLE booking ADD COLUMN series_id uuid",
    """
    ALTER TABLE booking ADD CONSTRAINT booking_series_id_fkey
        FOREIGN KEY (business_id, series_id) REFERENCES booking_series (business_id, id)
    """,
    "CREATE INDEX booking_series_idx ON booking (business_id, series_id, starts_at) "
    "WHERE series_id IS NOT NULL",
]

BACKWARDS = [
    "ALTER TABLE booking DROP COLUMN series_id",
    "DROP TABLE booking_series",
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
