"""The desk's day view reads only the day asked for (issue 15).

``booking_business_start_idx (business_id, starts_at, id)`` can serve "starts before the
day ends" only as a scan from the business's first booking up to that point: a booking
overlapping the day may have started the day before, so ``starts_at`` has no lower bound
without knowing the longest booking. A GiST index over the booking's span answers
"overlaps this day" exactly (``tstzrange(starts_at, ends_at) && the day``) with an index
range, whatever the bookings' lengths. btree_gist (already installed for the exclusion
constraints) lets ``business_id`` lead it. Backwards drops it. Raw SQL only.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T03:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "booking_business_span_idx: GiST over (business_id, booking span) for the day view"

FORWARDS = [
    "CREATE INDEX booking_business_span_idx ON booking "
    "USING gist (business_id, tstzrange(starts_at, ends_at, '[)'))",
]

BACKWARDS = [
    "DROP INDEX booking_business_span_idx",
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
