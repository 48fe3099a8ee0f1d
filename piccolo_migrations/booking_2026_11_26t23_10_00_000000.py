"""Access: partners and hashed API keys; bookings remember the partner that made them."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-26T23:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "partners and api keys"

FORWARDS = [
    """
    CREATE TABLE partner (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE api_key (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        prefix text NOT NULL UNIQUE,
        key_hash bytea NOT NULL,
        kind text NOT NULL CHECK (kind IN ('admin', 'staff', 'partner', 'app')),
        role text CHECK (role IS NULL OR role IN ('front_desk', 'manager')),
        partner_id uuid REFERENCES partner (id),
        business_ids uuid[] NOT NULL DEFAULT '{}',
        scopes text[] NOT NULL DEFAULT '{}',
        name text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz,
        last_used_at timestamptz,
        CONSTRAINT api_key_staff_role CHECK (kind <> 'staff' OR role IS NOT NULL),
        CONSTRAINT api_key_partner_id CHECK (kind <> 'partner' OR partner_id IS NOT NULL)
    )
    """,
    "ALTER TABLE booking ADD COLUMN partner_id uuid REFERENCES partner (id)",
    "CREATE INDEX booking_partner_idx ON booking (partner_id) WHERE partner_id IS NOT NULL",
]

BACKWARDS = [
    "ALTER TABLE booking DROP COLUMN IF EXISTS partner_id",
    "DROP TABLE IF EXISTS api_key",
    "DROP TABLE IF EXISTS partner",
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
