"""Staff sign-in for the web consoles (/desk, manager pages): one-time sign-in codes a
manager issues for a staff key, and the browser sessions they open.

Both tables are global (coordinator) rows like ``api_key``: a code is typed, and a
session cookie presented, before anyone knows the business; the business comes from the
key. A session belongs to its key: revoking the key ends its sessions (the session
lookup joins the key and asks ``revoked_at IS NULL``); deleting the key deletes them.
Codes and session tokens are stored as SHA-256 hashes only.

The customer search at the desk finds names by any part (``%ferri%``): a trigram index
on the lower-cased name (pg_trgm, shipped with PostgreSQL's contrib like btree_gist).
Self-contained: raw SQL only.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T02:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "staff sign-in codes and console sessions; trigram index of customer names"

FORWARDS = [
    """
    CREATE TABLE staff_sign_in (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        api_key_id uuid NOT NULL REFERENCES api_key (id) ON DELETE CASCADE,
        code_hash bytea NOT NULL UNIQUE,
        label text NOT NULL DEFAULT '' CHECK (length(label) <= 100),
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        CHECK (expires_at > created_at)
    )
    """,
    "CREATE INDEX staff_sign_in_key_idx ON staff_sign_in (api_key_id)",
    """
    CREATE TABLE staff_session (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        api_key_id uuid NOT NULL REFERENCES api_key (id) ON DELETE CASCADE,
        token_hash bytea NOT NULL UNIQUE,
        label text NOT NULL DEFAULT '' CHECK (length(label) <= 100),
        created_at timestamptz NOT NULL DEFAULT now(),
        last_seen_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        signed_out_at timestamptz,
        CHECK (expires_at > created_at)
    )
    """,
    "CREATE INDEX staff_session_key_idx ON staff_session (api_key_id)",
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX customer_name_trgm_idx ON customer USING gin (lower(name) gin_trgm_ops)",
]

BACKWARDS = [
    "DROP INDEX customer_name_trgm_idx",
    "DROP TABLE staff_session",
    "DROP TABLE staff_sign_in",
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
