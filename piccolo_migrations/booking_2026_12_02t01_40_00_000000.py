"""Settings a business can require, a global guard for slugs, and the customer's data
on request (GDPR).

* ``business.require_if_match``: when true, a staff change of a booking without
  ``If-Match`` is refused with 428 (default false: optional, as before).
* ``business.retention_months``: customers with no booking in that many months are
  anonymised by the worker's daily job (NULL, the default: kept).
* ``customer.erased_at``: when the customer's personal data was erased.
* ``promise.status`` may be ``withdrawn``: closed by an erasure, neither kept nor broken.
* ``catalog_audit.entity`` may be ``customer`` (exports and erasures are logged).
* ``business_slug (slug PRIMARY KEY, business UNIQUE)``: the reservation of every
  business's slug, written in the transaction that creates the business and
  backfilled here. On one node ``business_slug_key`` guards slugs as well; on Citus
  that key cannot hold (it lacks the distribution column) and the operator drops it,
  while this table stays on the coordinator (``citus_add_local_table_to_metadata``),
  where its primary key is one global index (docs/scaling.md). No foreign key: a
  coordinator table may not point at a distributed one; a deleted business keeps its
  slug reserved.
* An index for the key cache's revocation check (``count(*)`` of revoked keys).

Backwards drops them; withdrawn promises become ``kept`` (the guarantee's own reading
of a withdrawn offer's follow-up), the customer audit rows go.

Self-contained: raw SQL only, no app tables imported.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T01:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "require_if_match, retention_months, customer.erased_at, business_slug"

ENTITIES = "'business', 'staff', 'service', 'hours', 'exception', 'resource'"

FORWARDS = [
    "ALTER TABLE business ADD COLUMN require_if_match boolean NOT NULL DEFAULT false",
    "ALTER TABLE business ADD COLUMN retention_months integer "
    "CHECK (retention_months BETWEEN 1 AND 240)",
    "ALTER TABLE customer ADD COLUMN erased_at timestamptz",
    "ALTER TABLE promise DROP CONSTRAINT promise_status_check",
    "ALTER TABLE promise ADD CONSTRAINT promise_status_check "
    "CHECK (status IN ('open', 'kept', 'broken', 'withdrawn'))",
    "ALTER TABLE catalog_audit DROP CONSTRAINT catalog_audit_entity_check",
    "ALTER TABLE catalog_audit ADD CONSTRAINT catalog_audit_entity_check "
    f"CHECK (entity IN ({ENTITIES}, 'customer'))",
    """
    CREATE TABLE business_slug (
        slug text PRIMARY KEY,
        business uuid NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "INSERT INTO business_slug (slug, business) SELECT slug, id FROM business",
    "CREATE INDEX api_key_revoked_idx ON api_key (id) WHERE revoked_at IS NOT NULL",
]

BACKWARDS = [
    "DROP INDEX IF EXISTS api_key_revoked_idx",
    "DROP TABLE IF EXISTS business_slug",
    "ALTER TABLE catalog_audit DROP CONSTRAINT catalog_audit_entity_check",
    "DELETE FROM catalog_audit WHERE entity = 'customer'",
    f"ALTER TABLE catalog_audit ADD CONSTRAINT catalog_audit_entity_check CHECK (entity IN ({ENTITIES}))",
    "ALTER TABLE promise DROP CONSTRAINT promise_status_check",
    "UPDATE promise SET status = 'kept' WHERE status = 'withdrawn'",
    "ALTER TABLE promise ADD CONSTRAINT promise_status_check "
    "CHECK (status IN ('open', 'kept', 'broken'))",
    "ALTER TABLE customer DROP COLUMN erased_at",
    "ALTER TABLE business DROP COLUMN retention_months",
    "ALTER TABLE business DROP COLUMN require_if_match",
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
