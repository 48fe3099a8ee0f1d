"""The desk's search finds a phone number by any run of its digits as it is typed
(``%3331234%``): a trigram index on the customer's E.164 phone (pg_trgm, created by the
migration of 2026-12-02T02:10). Self-contained: raw SQL only.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T02:11:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "trigram index of customer phones for the desk search"

FORWARDS = ["CREATE INDEX customer_phone_trgm_idx ON customer USING gin (phone gin_trgm_ops)"]
BACKWARDS = ["DROP INDEX customer_phone_trgm_idx"]


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
