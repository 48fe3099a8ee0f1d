"""Access: per-key rate limits, idempotency records, partner webhook endpoints and deliveries.

Self-contained: raw SQL only, no app tables imported.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T00:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "api key limits, idempotency records, partner webhooks"

FORWARDS = [
    """
    ALTER TABLE api_key
        ADD COLUMN rate_limit_per_minute integer
            CHECK (rate_limit_per_minute IS NULL OR rate_limit_per_minute >= 0),
        ADD COLUMN created_by text NOT NULL DEFAULT 'cli'
    """,
    """
    CREATE TABLE idempotency_record (
        principal text NOT NULL,
        key text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
        fingerprint bytea NOT NULL,
        method text NOT NULL,
        path text NOT NULL,
        state text NOT NULL CHECK (state IN ('in_progress', 'completed')),
        owner uuid NOT NULL,
        status_code integer,
        headers jsonb NOT NULL DEFAULT '{}'::jsonb,
        body bytea,
        created_at timestamptz NOT NULL DEFAULT now(),
        locked_until timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (principal, key),
        CONSTRAINT idempotency_completed_has_answer
            CHECK (state <> 'completed' OR status_code IS NOT NULL)
    )
    """,
    "CREATE INDEX idempotency_record_expiry_idx ON idempotency_record (expires_at)",
    """
    CREATE TABLE webhook_endpoint (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        partner_id uuid NOT NULL REFERENCES partner (id),
        url text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2000),
        description text NOT NULL DEFAULT '',
        event_types text[] NOT NULL CHECK (cardinality(event_types) > 0),
        secret text NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        failing_since timestamptz,
        disabled_at timestamptz,
        disabled_reason text,
        deleted_at timestamptz
    )
    """,
    "CREATE INDEX webhook_endpoint_partner_idx ON webhook_endpoint (partner_id) "
    "WHERE deleted_at IS NULL",
    """
    CREATE TABLE webhook_delivery (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        endpoint_id uuid NOT NULL REFERENCES webhook_endpoint (id),
        outbox_event_id bigint NOT NULL,
        message_id text NOT NULL,
        event_type text NOT NULL,
        payload jsonb NOT NULL,
        status text NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'succeeded', 'failed')),
        attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        generation integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz,
        last_attempt_at timestamptz,
        last_status_code integer,
        last_error text,
        delivered_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT webhook_delivery_once UNIQUE (outbox_event_id, endpoint_id),
        CONSTRAINT webhook_delivery_pending_due
            CHECK (status <> 'pending' OR next_attempt_at IS NOT NULL)
    )
    """,
    "CREATE INDEX webhook_delivery_due_idx ON webhook_delivery (next_attempt_at) "
    "WHERE status = 'pending'",
    "CREATE INDEX webhook_delivery_endpoint_idx ON webhook_delivery (endpoint_id, created_at, id)",
    """
    CREATE TABLE webhook_attempt (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        delivery_id uuid NOT NULL REFERENCES webhook_delivery (id) ON DELETE CASCADE,
        attempted_at timestamptz NOT NULL DEFAULT now(),
        status_code integer,
        error text,
        duration_ms integer NOT NULL DEFAULT 0
    )
    """,
    "CREATE INDEX webhook_attempt_delivery_idx ON webhook_attempt (delivery_id, id)",
]

BACKWARDS = [
    "DROP TABLE IF EXISTS webhook_attempt",
    "DROP TABLE IF EXISTS webhook_delivery",
    "DROP TABLE IF EXISTS webhook_endpoint",
    "DROP TABLE IF EXISTS idempotency_record",
    "ALTER TABLE api_key DROP COLUMN IF EXISTS created_by",
    "ALTER TABLE api_key DROP COLUMN IF EXISTS rate_limit_per_minute",
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
