"""Resources in the booking rules: a change to a business's rooms, chairs or devices
moves its ``config_version`` (the remembered-rules stamp, migration 2026-11-27T02:00),
like a change to its staff or services, since a service context lists the active
resources of the group the service needs. An index finds the bookings holding a
resource (its deactivation's lost-slot recovery). Self-contained: raw SQL only.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T11:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "resource changes move the rules stamp; index of bookings by resource"

FORWARDS = [
    """
    CREATE TRIGGER resource_config_bump AFTER INSERT OR UPDATE OR DELETE ON resource
    FOR EACH ROW EXECUTE FUNCTION business_config_bump()
    """,
    "CREATE INDEX booking_resource_idx ON booking (business_id, resource_id, starts_at) "
    "WHERE resource_id IS NOT NULL",
]

BACKWARDS = [
    "DROP INDEX booking_resource_idx",
    "DROP TRIGGER resource_config_bump ON resource",
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
