"""A version stamp on each business's booking rules, so the API may keep them in memory.

The write path reads the service context (service, business rules, eligible
staff, working hours) before every booking. ``business.config_version`` changes
whenever any of that changes (a trigger on each table it comes from, raw SQL
included), so a process may reuse a context it read before and have the write
itself check the stamp: ``booking_insert_current`` raises SQLSTATE ``BK001``
when the stamp moved, and the service reads the context again.

Stamps come from a sequence the tables do not own (``TRUNCATE ... RESTART
IDENTITY`` leaves it alone), so a business deleted and created again with the
same id never repeats an old stamp.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "business.config_version stamp and booking_insert_current"

FORWARDS = [
    "CREATE SEQUENCE business_config_version_seq",
    """
    ALTER TABLE business ADD COLUMN config_version bigint NOT NULL
        DEFAULT nextval('business_config_version_seq')
    """,
    # Any update of a business row is a change of its rules (no hot counters live there).
    """
    CREATE FUNCTION business_config_touch() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.config_version = OLD.config_version THEN
            NEW.config_version := nextval('business_config_version_seq');
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER business_config_touch BEFORE UPDATE ON business
    FOR EACH ROW EXECUTE FUNCTION business_config_touch()
    """,
    # service, staff and working_hours carry business_id; service_staff goes via its service.
    """
    CREATE FUNCTION business_config_bump() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        v_ids uuid[];
    BEGIN
        IF TG_TABLE_NAME = 'service_staff' THEN
            SELECT array_agg(s.business_id) INTO v_ids FROM service s
            WHERE s.id IN (
                CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.service_id END,
                CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.service_id END);
        ELSE
            v_ids := ARRAY[
                CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.business_id END,
                CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.business_id END];
        END IF;
        UPDATE business SET config_version = nextval('business_config_version_seq')
        WHERE id = ANY(v_ids);
        RETURN NULL;
    END
    $$
    """,
    *(
        f"""
        CREATE TRIGGER {table}_config_bump AFTER INSERT OR UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION business_config_bump()
        """
        for table in ("service", "staff", "working_hours", "service_staff")
    ),
    # booking_insert_first, refused when the caller's rules are not the current ones.
    """
    CREATE FUNCTION booking_insert_current(
        p_config_version bigint,
        p_business_id uuid, p_service_id uuid, p_staff_ids uuid[],
        p_starts_at timestamptz, p_ends_at timestamptz,
        p_blocked_from timestamptz, p_blocked_until timestamptz,
        p_status text, p_channel text, p_customer_id uuid, p_partner_id uuid,
        p_hold_expires_at timestamptz, p_hold_token_hash bytea, p_notes text,
        p_created_by text, p_codes text[],
        p_customer_name text, p_customer_phone text, p_customer_locale text,
        p_event text, p_actor_type text, p_actor_id text, p_event_channel text,
        p_outbox_payload jsonb
    ) RETURNS SETOF booking LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM business
                       WHERE id = p_business_id AND config_version = p_config_version) THEN
            RAISE EXCEPTION 'the business''s booking rules changed since they were read'
                USING ERRCODE = 'BK001';
        END IF;
        RETURN QUERY SELECT * FROM booking_insert_first(
            p_business_id, p_service_id, p_staff_ids, p_starts_at, p_ends_at,
            p_blocked_from, p_blocked_until, p_status, p_channel, p_customer_id, p_partner_id,
            p_hold_expires_at, p_hold_token_hash, p_notes, p_created_by, p_codes,
            p_customer_name, p_customer_phone, p_customer_locale,
            p_event, p_actor_type, p_actor_id, p_event_channel, p_outbox_payload);
    END
    $$
    """,
]

BACKWARDS = [
    "DROP FUNCTION IF EXISTS booking_insert_current(bigint, uuid, uuid, uuid[], timestamptz, "
    "timestamptz, timestamptz, timestamptz, text, text, uuid, uuid, timestamptz, bytea, text, "
    "text, text[], text, text, text, text, text, text, text, jsonb)",
    *(
        f"DROP TRIGGER IF EXISTS {table}_config_bump ON {table}"
        for table in ("service", "staff", "working_hours", "service_staff")
    ),
    "DROP FUNCTION IF EXISTS business_config_bump()",
    "DROP TRIGGER IF EXISTS business_config_touch ON business",
    "DROP FUNCTION IF EXISTS business_config_touch()",
    "ALTER TABLE business DROP COLUMN IF EXISTS config_version",
    "DROP SEQUENCE IF EXISTS business_config_version_seq",
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
