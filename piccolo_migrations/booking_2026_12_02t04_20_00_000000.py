"""The availability search's busy-time read has an index again: a GiST over (staff_id,
the blocked range) for the bookings that hold time.

Until 2026-12-01T11:00 the exclusion constraint ``booking_no_staff_overlap`` was that
index; 11:00 moved the guarantee to ``allocation_no_overlap`` and dropped it, and since
then every availability read of busy time (booking.availability.service._BUSY_SQL:
``staff_id = ANY(..) AND tstzrange(blocked_from, blocked_until) && ..``) scans the whole
booking table: ~40 ms at 100,000 bookings (bench.desk data), on every desk card (its
earliest alternatives) and so on every exact reference typed at the desk (issue 15).
The index has the dropped constraint's columns and predicate, so the read's plan is the
one it had before 11:00. Plain index (no constraint): allocation_no_overlap stays the
arbiter. Built in the migration's transaction (not CONCURRENTLY), like every index here.
Self-contained: raw SQL only; backwards drops it.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T04:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "booking_staff_busy_idx: the availability busy-time read uses an index again"

FORWARDS = [
    """
    CREATE INDEX booking_staff_busy_idx ON booking
        USING gist (staff_id, tstzrange(blocked_from, blocked_until, '[)'))
        WHERE status IN ('held', 'pending', 'confirmed', 'checked_in')
    """,
]

BACKWARDS = ["DROP INDEX booking_staff_busy_idx"]


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
