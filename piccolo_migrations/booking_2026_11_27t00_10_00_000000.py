"""Notifications: SMS messages with delivery tracking, reminders as rows, inbound replies.

Self-contained: raw SQL only, no app tables imported.

* ``message``: one SMS and its delivery status. ``dedupe_key`` is unique, so a
  rerun of the job that queues a message never creates a second one.
* ``reminder``: a reminder is a row with a due time, drained by a cron job; a
  moved booking gets new rows (keyed by the start time they remind of) and its
  old ones are cancelled.
* ``inbound_message``: replies received through Twilio's inbound webhook.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T00:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "sms messages, reminders and inbound replies"

FORWARDS = [
    """
    CREATE TABLE message (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        business_id uuid REFERENCES business (id) ON DELETE CASCADE,
        booking_id uuid REFERENCES booking (id) ON DELETE CASCADE,
        customer_id uuid REFERENCES customer (id) ON DELETE SET NULL,
        outbox_id bigint,
        dedupe_key text NOT NULL UNIQUE,
        template text NOT NULL,
        locale text NOT NULL,
        to_phone text NOT NULL,
        body text NOT NULL,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN (
            'pending', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'skipped')),
        provider text,
        provider_sid text UNIQUE,
        provider_status text,
        error_code integer,
        error_message text,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        claimed_until timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz,
        delivered_at timestamptz
    )
    """,
    "CREATE INDEX message_booking_idx ON message (booking_id, created_at)",
    """
    CREATE INDEX message_pending_idx ON message (next_attempt_at)
        WHERE status IN ('pending', 'sending')
    """,
    """
    CREATE TABLE reminder (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        booking_id uuid NOT NULL REFERENCES booking (id) ON DELETE CASCADE,
        booking_starts_at timestamptz NOT NULL,
        offset_minutes integer NOT NULL CHECK (offset_minutes > 0),
        due_at timestamptz NOT NULL,
        status text NOT NULL DEFAULT 'scheduled'
            CHECK (status IN ('scheduled', 'sent', 'cancelled', 'skipped')),
        message_id uuid REFERENCES message (id) ON DELETE SET NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        processed_at timestamptz,
        UNIQUE (booking_id, booking_starts_at, offset_minutes)
    )
    """,
    "CREATE INDEX reminder_due_idx ON reminder (due_at) WHERE status = 'scheduled'",
    "CREATE INDEX reminder_booking_idx ON reminder (booking_id)",
    """
    CREATE TABLE inbound_message (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        provider_sid text NOT NULL UNIQUE,
        from_phone text NOT NULL,
        to_phone text NOT NULL DEFAULT '',
        body text NOT NULL DEFAULT '',
        keyword text,
        booking_id uuid REFERENCES booking (id) ON DELETE SET NULL,
        outcome text NOT NULL DEFAULT '',
        received_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX inbound_message_from_idx ON inbound_message (from_phone, received_at)",
]

BACKWARDS = [
    "DROP TABLE IF EXISTS inbound_message",
    "DROP TABLE IF EXISTS reminder",
    "DROP TABLE IF EXISTS message",
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
