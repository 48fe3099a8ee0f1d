"""Catalog API: dated exceptions to working hours, and an append-only catalog audit.

* ``staff_hours_exception``: for one local date, a member of staff works these ranges
  instead of their weekly hours (a special opening), or not at all (a closed day: one
  row with no times). A trigger moves ``business.config_version`` like the other
  tables the booking rules come from (migration 2026-11-27T02:00).
* ``catalog_audit``: who changed what in a business's catalog and settings (the
  actor, the action, the fields before and after). Rows are only ever added.

Both tables are keyed by business (``PRIMARY KEY (business_id, id)``, a foreign key
to ``business`` only), ready for distribution by business like the others (migration
2026-12-01T12:00). ``staff_hours_exception.staff_id`` has no foreign key of its own: a
plain one to ``staff (id)`` would stop 12:00 from replacing staff's primary key, and a
composite one needs the ``(business_id, id)`` key 12:00 creates (adding that key here
would capture 12:00's own foreign keys). The service checks the member of staff is the
business's, under a row lock, and the rows go with their business (ON DELETE CASCADE);
staff rows are never deleted on their own. Works before or after 12:00.

Self-contained: raw SQL only, no app tables imported.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "staff_hours_exception with config stamp trigger; append-only catalog_audit"

FORWARDS = [
    """
    CREATE TABLE staff_hours_exception (
        id bigint GENERATED ALWAYS AS IDENTITY,
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        staff_id uuid NOT NULL,
        day date NOT NULL,
        opens_at time,
        closes_at time,
        note text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((opens_at IS NULL) = (closes_at IS NULL)),
        CHECK (closes_at > opens_at),
        PRIMARY KEY (business_id, id)
    )
    """,
    "CREATE INDEX staff_hours_exception_staff_idx ON staff_hours_exception (staff_id, day)",
    """
    CREATE TRIGGER staff_hours_exception_config_bump
    AFTER INSERT OR UPDATE OR DELETE ON staff_hours_exception
    FOR EACH ROW EXECUTE FUNCTION business_config_bump()
    """,
    """
    CREATE TABLE catalog_audit (
        id bigint GENERATED ALWAYS AS IDENTITY,
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        entity text NOT NULL CHECK (entity IN ('business', 'staff', 'service', 'hours',
                                               'exception')),
        entity_id uuid NOT NULL,
        action text NOT NULL,
        actor_type text NOT NULL,
        actor_id text NOT NULL,
        changes jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (business_id, id)
    )
    """,
    """
    CREATE FUNCTION catalog_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'catalog_audit rows are never changed' USING ERRCODE = '55000';
    END
    $$
    """,
    """
    CREATE TRIGGER catalog_audit_append_only BEFORE UPDATE ON catalog_audit
    FOR EACH ROW EXECUTE FUNCTION catalog_audit_append_only()
    """,
]

BACKWARDS = [
    "DROP TABLE IF EXISTS catalog_audit",
    "DROP FUNCTION IF EXISTS catalog_audit_append_only()",
    "DROP TABLE IF EXISTS staff_hours_exception",
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
