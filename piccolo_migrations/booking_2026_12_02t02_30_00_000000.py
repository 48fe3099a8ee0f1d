"""Calendar feeds (issue 13): a private, revocable iCalendar URL per member of staff, per
resource, or for the whole business (``resource_id`` NULL).

Only a hash of the feed's secret is stored; the secret is shown once when the feed is
made. Revoking stamps ``revoked_at`` (the URL answers 404 from then on). Keyed by
business like every tenant table. Self-contained: raw SQL only.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T02:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "calendar_feed: private revocable iCalendar feeds per resource or business"

FORWARDS = [
    """
    CREATE TABLE calendar_feed (
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        resource_id uuid,
        secret_hash bytea NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz,
        PRIMARY KEY (business_id, id),
        FOREIGN KEY (business_id, resource_id) REFERENCES resource (business_id, id)
            ON DELETE CASCADE
    )
    """,
    # The feed URL carries the feed id: a poll finds its row by id alone.
    "CREATE INDEX calendar_feed_id_idx ON calendar_feed (id)",
    # A resource's feed lists the bookings that hold it (staff: booking.staff_id).
    "CREATE INDEX booking_calendar_staff_idx ON booking (business_id, staff_id, starts_at)",
]

BACKWARDS = [
    "DROP INDEX booking_calendar_staff_idx",
    "DROP TABLE calendar_feed",
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
