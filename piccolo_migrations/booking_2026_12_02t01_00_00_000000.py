"""Offer options name their resource; dated exceptions point at their staff; resources
are audited like the rest of the catalog.

* ``reschedule_option.resource_id``: the room/chair/device the held option takes (the
  hold row has it already; the offer's answer and SMS show it without a join through
  the hold). Backfilled from each option's hold; a composite foreign key
  ``(business_id, resource_id)`` to ``resource`` (NULL: staff only).
* ``staff_hours_exception (business_id, staff_id)`` references ``staff (business_id,
  id)`` ON DELETE CASCADE (migration 2026-12-01T10:00 could not add it before
  12:00 gave staff its composite key). Rows whose member of staff is gone are deleted
  first (none should exist: the service checks, staff rows are never deleted alone).
* ``catalog_audit.entity`` may be ``resource`` (the resources API records its changes).

Backwards drops the column, the foreign key and the new entity (its audit rows go).

Self-contained: raw SQL only, no app tables imported.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "reschedule_option.resource_id; staff_hours_exception staff FK; audited resources"

FORWARDS = [
    "ALTER TABLE reschedule_option ADD COLUMN resource_id uuid",
    """
    UPDATE reschedule_option o SET resource_id = h.resource_id
    FROM booking h WHERE h.business_id = o.business_id AND h.id = o.hold_id
      AND h.resource_id IS NOT NULL
    """,
    """
    ALTER TABLE reschedule_option ADD CONSTRAINT reschedule_option_resource_id_fkey
    FOREIGN KEY (business_id, resource_id) REFERENCES resource (business_id, id)
    ON DELETE CASCADE
    """,
    """
    DELETE FROM staff_hours_exception e WHERE NOT EXISTS (
        SELECT 1 FROM staff s WHERE s.business_id = e.business_id AND s.id = e.staff_id)
    """,
    """
    ALTER TABLE staff_hours_exception ADD CONSTRAINT staff_hours_exception_staff_id_fkey
    FOREIGN KEY (business_id, staff_id) REFERENCES staff (business_id, id) ON DELETE CASCADE
    """,
    "ALTER TABLE catalog_audit DROP CONSTRAINT catalog_audit_entity_check",
    """
    ALTER TABLE catalog_audit ADD CONSTRAINT catalog_audit_entity_check
    CHECK (entity IN ('business', 'staff', 'service', 'hours', 'exception', 'resource'))
    """,
]

BACKWARDS = [
    "ALTER TABLE catalog_audit DROP CONSTRAINT catalog_audit_entity_check",
    # The table is append-only for updates; deleting the newer rows is allowed.
    "DELETE FROM catalog_audit WHERE entity = 'resource'",
    """
    ALTER TABLE catalog_audit ADD CONSTRAINT catalog_audit_entity_check
    CHECK (entity IN ('business', 'staff', 'service', 'hours', 'exception'))
    """,
    "ALTER TABLE staff_hours_exception DROP CONSTRAINT staff_hours_exception_staff_id_fkey",
    "ALTER TABLE reschedule_option DROP CONSTRAINT reschedule_option_resource_id_fkey",
    "ALTER TABLE reschedule_option DROP COLUMN resource_id",
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
