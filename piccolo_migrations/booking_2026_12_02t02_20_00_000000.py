"""The journey reads a booking's rows from every table by (business, booking).

``GET /v1/bookings/{id}/journey`` (booking/journey/timeline.py) reads, per booking,
its offers, waitlist entries, promises and the outbox events that carry its partner
webhook deliveries. History, messages and reminders already had an index by booking;
these four did not (a journey scanned every offer or promise of the business).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T02:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "journey: indexes by booking on offers, waitlist, promises and outbox"

FORWARDS = [
    "CREATE INDEX reschedule_offer_booking_idx ON reschedule_offer (business_id, booking_id)",
    "CREATE INDEX waitlist_entry_booking_idx ON waitlist_entry (business_id, booking_id)",
    "CREATE INDEX promise_booking_idx ON promise (business_id, booking_id)"
    " WHERE booking_id IS NOT NULL",
    "CREATE INDEX outbox_aggregate_idx ON outbox (business_id, aggregate_id)"
    " WHERE aggregate_id IS NOT NULL",
]
BACKWARDS = [
    "DROP INDEX outbox_aggregate_idx",
    "DROP INDEX promise_booking_idx",
    "DROP INDEX waitlist_entry_booking_idx",
    "DROP INDEX reschedule_offer_booking_idx",
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
