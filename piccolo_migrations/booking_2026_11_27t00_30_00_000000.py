"""The appointment guarantee: reschedule offers, the earlier-slot waitlist, promises.

Self-contained: raw SQL only, no app tables imported.

* ``booking.at_risk_since`` / ``at_risk_reason``: a booked slot that can no longer
  be honoured (time off, sick leave, staff deactivated), until it is resolved.
* ``reschedule_offer`` + ``reschedule_option``: up to three alternatives, each a
  ``held`` booking row (so the exclusion constraint guarantees them) for the
  offer's lifetime. ``kind`` says why: a lost slot, or an earlier time freed for
  a waitlisted customer. One open offer per booking.
* ``waitlist_entry``: "tell me if something earlier frees up" within a window.
* ``freed_slot``: a time that became free (cancel or move) and is being offered
  down the waitlist, one customer at a time.
* ``promise``: a customer-facing commitment with a due time, watched by a job.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T00:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "reschedule offers, earlier-slot waitlist and promises with due times"

FORWARDS = [
    "ALTER TABLE booking ADD COLUMN at_risk_since timestamptz",
    "ALTER TABLE booking ADD COLUMN at_risk_reason text",
    """
    CREATE INDEX booking_at_risk_idx ON booking (business_id, starts_at)
        WHERE at_risk_since IS NOT NULL
    """,
    "ALTER TABLE business ADD COLUMN customer_may_confirm boolean NOT NULL DEFAULT true",
    """
    CREATE TABLE freed_slot (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        source_booking_id uuid REFERENCES booking (id) ON DELETE CASCADE,
        staff_id uuid NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
        starts_at timestamptz NOT NULL,
        status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'taken', 'exhausted')),
        dedupe_key text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now(),
        closed_at timestamptz
    )
    """,
    "CREATE INDEX freed_slot_open_idx ON freed_slot (business_id) WHERE status = 'open'",
    """
    CREATE TABLE waitlist_entry (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        booking_id uuid NOT NULL REFERENCES booking (id) ON DELETE CASCADE,
        earliest timestamptz NOT NULL,
        latest timestamptz NOT NULL,
        status text NOT NULL DEFAULT 'waiting'
            CHECK (status IN ('waiting', 'fulfilled', 'cancelled')),
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        closed_at timestamptz,
        CHECK (latest > earliest)
    )
    """,
    """
    CREATE UNIQUE INDEX waitlist_one_per_booking ON waitlist_entry (booking_id)
        WHERE status = 'waiting'
    """,
    "CREATE INDEX waitlist_waiting_idx ON waitlist_entry (business_id, created_at) WHERE status = 'waiting'",
    """
    CREATE TABLE reschedule_offer (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        booking_id uuid NOT NULL REFERENCES booking (id) ON DELETE CASCADE,
        kind text NOT NULL CHECK (kind IN ('lost_slot', 'earlier_slot')),
        status text NOT NULL DEFAULT 'open'
            CHECK (status IN ('open', 'accepted', 'expired', 'withdrawn')),
        reason text NOT NULL DEFAULT '',
        expires_at timestamptz NOT NULL,
        waitlist_entry_id uuid REFERENCES waitlist_entry (id) ON DELETE CASCADE,
        freed_slot_id uuid REFERENCES freed_slot (id) ON DELETE CASCADE,
        accepted_position smallint,
        decided_by text,
        created_at timestamptz NOT NULL DEFAULT now(),
        decided_at timestamptz,
        CHECK (kind <> 'earlier_slot' OR (waitlist_entry_id IS NOT NULL AND freed_slot_id IS NOT NULL))
    )
    """,
    """
    CREATE UNIQUE INDEX reschedule_offer_one_open ON reschedule_offer (booking_id)
        WHERE status = 'open'
    """,
    "CREATE INDEX reschedule_offer_expiry_idx ON reschedule_offer (expires_at) WHERE status = 'open'",
    "CREATE INDEX reschedule_offer_business_idx ON reschedule_offer (business_id, created_at)",
    """
    CREATE TABLE reschedule_option (
        offer_id uuid NOT NULL REFERENCES reschedule_offer (id) ON DELETE CASCADE,
        position smallint NOT NULL CHECK (position BETWEEN 1 AND 3),
        hold_id uuid NOT NULL REFERENCES booking (id) ON DELETE CASCADE,
        staff_id uuid NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
        starts_at timestamptz NOT NULL,
        PRIMARY KEY (offer_id, position),
        UNIQUE (hold_id)
    )
    """,
    """
    CREATE TABLE promise (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        booking_id uuid REFERENCES booking (id) ON DELETE CASCADE,
        kind text NOT NULL CHECK (kind IN ('confirmation', 'offer_follow_up', 'reply')),
        subject text NOT NULL,
        customer_phone text,
        made_at timestamptz NOT NULL DEFAULT now(),
        nudge_at timestamptz NOT NULL,
        due_at timestamptz NOT NULL,
        status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'kept', 'broken')),
        nudged_at timestamptz,
        alerted_at timestamptz,
        resolved_at timestamptz,
        CHECK (due_at >= made_at AND nudge_at <= due_at),
        UNIQUE (kind, subject)
    )
    """,
    "CREATE INDEX promise_open_idx ON promise (nudge_at) WHERE status = 'open'",
    "CREATE INDEX promise_business_idx ON promise (business_id, status)",
]

BACKWARDS = [
    "DROP TABLE IF EXISTS promise",
    "DROP TABLE IF EXISTS reschedule_option",
    "DROP TABLE IF EXISTS reschedule_offer",
    "DROP TABLE IF EXISTS waitlist_entry",
    "DROP TABLE IF EXISTS freed_slot",
    "ALTER TABLE business DROP COLUMN IF EXISTS customer_may_confirm",
    "DROP INDEX IF EXISTS booking_at_risk_idx",
    "ALTER TABLE booking DROP COLUMN IF EXISTS at_risk_reason",
    "ALTER TABLE booking DROP COLUMN IF EXISTS at_risk_since",
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
