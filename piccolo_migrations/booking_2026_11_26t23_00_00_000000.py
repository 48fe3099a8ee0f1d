"""Core schema: tenants, staff, services, customers, bookings, history, outbox.

Self-contained: raw SQL only, no app tables imported. The exclusion
constraint ``booking_no_staff_overlap`` is the guarantee that a member of staff
is never in two active bookings (holds included) at once, whoever writes the row.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-26T23:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "core booking schema with staff overlap exclusion constraint"

FORWARDS = [
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    """
    CREATE TABLE business (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
        name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        time_zone text NOT NULL,
        locale text NOT NULL DEFAULT 'en',
        address text NOT NULL DEFAULT '',
        on_duty_phone text,
        change_cutoff_minutes integer NOT NULL DEFAULT 120 CHECK (change_cutoff_minutes >= 0),
        max_changes integer NOT NULL DEFAULT 3 CHECK (max_changes >= 0),
        min_notice_minutes integer NOT NULL DEFAULT 60 CHECK (min_notice_minutes >= 0),
        slot_step_minutes integer NOT NULL DEFAULT 15 CHECK (slot_step_minutes BETWEEN 5 AND 240),
        hold_ttl_seconds integer NOT NULL DEFAULT 600 CHECK (hold_ttl_seconds BETWEEN 30 AND 86400),
        reminder_offsets_minutes integer[] NOT NULL DEFAULT '{1440,120}',
        confirm_within_minutes integer NOT NULL DEFAULT 120 CHECK (confirm_within_minutes > 0),
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE staff (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        phone text,
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX staff_business_idx ON staff (business_id)",
    """
    CREATE TABLE working_hours (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        staff_id uuid NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
        weekday smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6),
        opens_at time NOT NULL,
        closes_at time NOT NULL,
        CHECK (closes_at > opens_at)
    )
    """,
    "CREATE INDEX working_hours_staff_idx ON working_hours (staff_id, weekday)",
    """
    CREATE TABLE time_off (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        staff_id uuid NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL,
        reason text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK (ends_at > starts_at)
    )
    """,
    "CREATE INDEX time_off_staff_idx ON time_off USING gist (staff_id, tstzrange(starts_at, ends_at))",
    """
    CREATE TABLE service (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        duration_minutes integer NOT NULL CHECK (duration_minutes BETWEEN 5 AND 1440),
        buffer_before_minutes integer NOT NULL DEFAULT 0 CHECK (buffer_before_minutes BETWEEN 0 AND 240),
        buffer_after_minutes integer NOT NULL DEFAULT 0 CHECK (buffer_after_minutes BETWEEN 0 AND 240),
        price_cents integer NOT NULL DEFAULT 0 CHECK (price_cents >= 0),
        currency char(3) NOT NULL DEFAULT 'EUR',
        requires_confirmation boolean NOT NULL DEFAULT false,
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX service_business_idx ON service (business_id)",
    """
    CREATE TABLE service_staff (
        service_id uuid NOT NULL REFERENCES service (id) ON DELETE CASCADE,
        staff_id uuid NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
        PRIMARY KEY (service_id, staff_id)
    )
    """,
    """
    CREATE TABLE customer (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        phone text NOT NULL CHECK (phone ~ '^\\+[1-9][0-9]{6,14}$'),
        locale text NOT NULL DEFAULT 'en',
        sms_consent boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (business_id, phone)
    )
    """,
    """
    CREATE TABLE booking (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        business_id uuid NOT NULL REFERENCES business (id),
        staff_id uuid NOT NULL REFERENCES staff (id),
        service_id uuid NOT NULL REFERENCES service (id),
        customer_id uuid REFERENCES customer (id),
        status text NOT NULL CHECK (status IN ('held', 'pending', 'confirmed', 'checked_in',
                                               'completed', 'cancelled', 'no_show', 'expired')),
        channel text NOT NULL CHECK (channel IN ('web', 'mobile', 'front_desk', 'partner',
                                                 'phone', 'sms', 'system')),
        reference_code text NOT NULL UNIQUE,
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL,
        blocked_from timestamptz NOT NULL,
        blocked_until timestamptz NOT NULL,
        version integer NOT NULL DEFAULT 1,
        change_count integer NOT NULL DEFAULT 0,
        hold_expires_at timestamptz,
        hold_token_hash bytea,
        cancel_reason text,
        notes text NOT NULL DEFAULT '',
        created_by text NOT NULL DEFAULT 'system',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT booking_time_order CHECK (ends_at > starts_at),
        CONSTRAINT booking_blocked_covers CHECK (blocked_from <= starts_at AND blocked_until >= ends_at),
        CONSTRAINT booking_hold_expiry CHECK (status <> 'held' OR hold_expires_at IS NOT NULL),
        CONSTRAINT booking_customer_required
            CHECK (status IN ('held', 'expired', 'cancelled') OR customer_id IS NOT NULL),
        CONSTRAINT booking_no_staff_overlap EXCLUDE USING gist (
            staff_id WITH =,
            tstzrange(blocked_from, blocked_until, '[)') WITH &&
        ) WHERE (status IN ('held', 'pending', 'confirmed', 'checked_in'))
    )
    """,
    "CREATE INDEX booking_business_start_idx ON booking (business_id, starts_at, id)",
    "CREATE INDEX booking_customer_idx ON booking (customer_id)",
    "CREATE INDEX booking_held_expiry_idx ON booking (hold_expires_at) WHERE status = 'held'",
    """
    CREATE TABLE booking_history (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        booking_id uuid NOT NULL REFERENCES booking (id),
        business_id uuid NOT NULL REFERENCES business (id),
        occurred_at timestamptz NOT NULL DEFAULT now(),
        event text NOT NULL,
        from_status text,
        to_status text,
        actor_type text NOT NULL,
        actor_id text NOT NULL,
        channel text NOT NULL,
        changes jsonb NOT NULL DEFAULT '{}'::jsonb,
        reason text,
        policy_override boolean NOT NULL DEFAULT false
    )
    """,
    "CREATE INDEX booking_history_booking_idx ON booking_history (booking_id, id)",
    """
    CREATE FUNCTION booking_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'booking_history is append-only' USING ERRCODE = 'restrict_violation';
    END
    $$
    """,
    """
    CREATE TRIGGER booking_history_no_rewrite BEFORE UPDATE OR DELETE ON booking_history
    FOR EACH ROW EXECUTE FUNCTION booking_history_append_only()
    """,
    """
    CREATE TABLE outbox (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        business_id uuid,
        topic text NOT NULL,
        aggregate_id uuid,
        payload jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        available_at timestamptz NOT NULL DEFAULT now(),
        relayed_at timestamptz,
        attempts integer NOT NULL DEFAULT 0,
        last_error text
    )
    """,
    "CREATE INDEX outbox_unrelayed_idx ON outbox (available_at, id) WHERE relayed_at IS NULL",
]

BACKWARDS = [
    "DROP TABLE IF EXISTS outbox",
    "DROP TRIGGER IF EXISTS booking_history_no_rewrite ON booking_history",
    "DROP TABLE IF EXISTS booking_history",
    "DROP FUNCTION IF EXISTS booking_history_append_only()",
    "DROP TABLE IF EXISTS booking",
    "DROP TABLE IF EXISTS customer",
    "DROP TABLE IF EXISTS service_staff",
    "DROP TABLE IF EXISTS service",
    "DROP TABLE IF EXISTS time_off",
    "DROP TABLE IF EXISTS working_hours",
    "DROP TABLE IF EXISTS staff",
    "DROP TABLE IF EXISTS business",
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
