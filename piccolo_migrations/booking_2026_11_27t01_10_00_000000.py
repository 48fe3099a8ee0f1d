"""Outbox rows remember when their handlers ran, so a job lost with Redis is relayed again."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T01:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "outbox.handled_at for redelivery of jobs lost with Redis"

FORWARDS = [
    "ALTER TABLE outbox ADD COLUMN handled_at timestamptz",
    # Rows relayed before this migration were handled (or are covered by the
    # per-feature requeue crons); do not replay history.
    "UPDATE outbox SET handled_at = relayed_at WHERE relayed_at IS NOT NULL",
    """
    CREATE INDEX outbox_unhandled_idx ON outbox (relayed_at, id)
    WHERE relayed_at IS NOT NULL AND handled_at IS NULL
    """,
]

BACKWARDS = [
    "DROP INDEX IF EXISTS outbox_unhandled_idx",
    "ALTER TABLE outbox DROP COLUMN IF EXISTS handled_at",
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
