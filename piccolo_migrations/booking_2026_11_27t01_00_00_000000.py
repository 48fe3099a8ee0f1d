"""The booking write path in one round trip: two PL/pgSQL functions.

* ``booking_insert_first`` - what ``bookings.service._insert_active`` did in up
  to eight statements: upsert the customer (optional), lazily expire the holds
  past their TTL on the wanted time (with their ``hold.expired`` history), skip
  staff with time off, insert the row for the first member of staff the
  exclusion constraint lets have it (retrying the rare reference-code clash),
  and append the row's history event and (optional) outbox entry.
* ``booking_move_first`` - the same for a ticket change: expire holds, skip
  time off, move the row to the first member of staff the constraint allows,
  and append its ``booking.changed`` history event and outbox entry.

Both return the row (``SETOF booking``), or no row when every candidate is
taken. The exclusion constraint ``booking_no_staff_overlap`` stays the arbiter;
the functions only save the round trips. Self-contained raw SQL.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "booking write path in one round trip (booking_insert_first, booking_move_first)"

EXPIRE_HOLDS = """
    CREATE FUNCTION booking_expire_holds_on(
        p_staff_ids uuid[], p_blocked_from timestamptz, p_blocked_until timestamptz
    ) RETURNS void LANGUAGE sql AS $$
        WITH released AS (
            UPDATE booking SET status = 'expired', version = version + 1, updated_at = now(),
                   hold_token_hash = NULL
            WHERE staff_id = ANY(p_staff_ids) AND status = 'held' AND hold_expires_at <= now()
              AND tstzrange(blocked_from, blocked_until, '[)')
                  && tstzrange(p_blocked_from, p_blocked_until, '[)')
            RETURNING id, business_id, status
        )
        INSERT INTO booking_history (booking_id, business_id, event, from_status, to_status,
            actor_type, actor_id, channel, changes, reason, policy_override)
        SELECT id, business_id, 'hold.expired', 'held', status, 'system', 'hold-release',
               'system', '{}'::jsonb, NULL, false
        FROM released
    $$
"""

INSERT_FIRST = """
    CREATE FUNCTION booking_insert_first(
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
    DECLARE
        v_customer uuid := p_customer_id;
        v_staff uuid;
        v_code integer := 0;
        v_row booking;
        v_found boolean := false;
        v_constraint text;
    BEGIN
        IF p_customer_phone IS NOT NULL THEN
            INSERT INTO customer (business_id, name, phone, locale)
            VALUES (p_business_id, p_customer_name, p_customer_phone, p_customer_locale)
            ON CONFLICT (business_id, phone) DO UPDATE SET locale = EXCLUDED.locale
            RETURNING id INTO v_customer;
        END IF;
        PERFORM booking_expire_holds_on(p_staff_ids, p_blocked_from, p_blocked_until);
        <<staff_loop>>
        FOREACH v_staff IN ARRAY p_staff_ids LOOP
            CONTINUE WHEN EXISTS (
                SELECT 1 FROM time_off WHERE staff_id = v_staff
                  AND tstzrange(starts_at, ends_at, '[)')
                      && tstzrange(p_blocked_from, p_blocked_until, '[)'));
            FOR v_try IN 1..5 LOOP  -- reference codes are random; retry the rare clash
                v_code := v_code + 1;
                BEGIN
                    INSERT INTO booking (business_id, staff_id, service_id, customer_id,
                        partner_id, status, channel, reference_code, starts_at, ends_at,
                        blocked_from, blocked_until, hold_expires_at, hold_token_hash,
                        notes, created_by)
                    VALUES (p_business_id, v_staff, p_service_id, v_customer, p_partner_id,
                        p_status, p_channel, p_codes[v_code], p_starts_at, p_ends_at,
                        p_blocked_from, p_blocked_until, p_hold_expires_at, p_hold_token_hash,
                        p_notes, p_created_by)
                    RETURNING * INTO v_row;
                    v_found := true;
                    EXIT staff_loop;
                EXCEPTION
                    WHEN exclusion_violation THEN
                        CONTINUE staff_loop;  -- this member of staff is taken; try the next
                    WHEN unique_violation THEN
                        GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
                        IF v_constraint NOT LIKE '%reference_code%' THEN
                            RAISE;
                        END IF;
                END;
            END LOOP;
        END LOOP;
        IF NOT v_found THEN
            RETURN;
        END IF;
        INSERT INTO booking_history (booking_id, business_id, event, from_status, to_status,
            actor_type, actor_id, channel, changes, reason, policy_override)
        VALUES (v_row.id, v_row.business_id, p_event, NULL, v_row.status, p_actor_type,
            p_actor_id, p_event_channel, '{}'::jsonb, NULL, false);
        IF p_outbox_payload IS NOT NULL THEN
            INSERT INTO outbox (business_id, topic, aggregate_id, payload)
            VALUES (v_row.business_id, p_event, v_row.id,
                p_outbox_payload || jsonb_build_object(
                    'booking_id', v_row.id::text, 'version', v_row.version,
                    'status', v_row.status));
        END IF;
        RETURN NEXT v_row;
    END
    $$
"""

MOVE_FIRST = """
    CREATE FUNCTION booking_move_first(
        p_booking_id uuid, p_service_id uuid, p_staff_ids uuid[],
        p_starts_at timestamptz, p_ends_at timestamptz,
        p_blocked_from timestamptz, p_blocked_until timestamptz,
        p_old_staff_id uuid, p_changes jsonb, p_from_status text,
        p_actor_type text, p_actor_id text, p_channel text, p_reason text,
        p_policy_override boolean, p_outbox_payload jsonb
    ) RETURNS SETOF booking LANGUAGE plpgsql AS $$
    DECLARE
        v_staff uuid;
        v_row booking;
        v_found boolean := false;
        v_changes jsonb := p_changes;
    BEGIN
        PERFORM booking_expire_holds_on(p_staff_ids, p_blocked_from, p_blocked_until);
        FOREACH v_staff IN ARRAY p_staff_ids LOOP
            CONTINUE WHEN EXISTS (
                SELECT 1 FROM time_off WHERE staff_id = v_staff
                  AND tstzrange(starts_at, ends_at, '[)')
                      && tstzrange(p_blocked_from, p_blocked_until, '[)'));
            BEGIN
                UPDATE booking SET staff_id = v_staff, service_id = p_service_id,
                    starts_at = p_starts_at, ends_at = p_ends_at,
                    blocked_from = p_blocked_from, blocked_until = p_blocked_until,
                    version = version + 1, change_count = change_count + 1, updated_at = now()
                WHERE id = p_booking_id RETURNING * INTO v_row;
                v_found := true;
                EXIT;
            EXCEPTION WHEN exclusion_violation THEN
                NULL;  -- taken: try the next member of staff
            END;
        END LOOP;
        IF NOT v_found THEN
            RETURN;
        END IF;
        -- p_changes holds the start, end and service changes (known before the move);
        -- who got the booking is known only now.
        IF v_row.staff_id IS DISTINCT FROM p_old_staff_id THEN
            v_changes := v_changes || jsonb_build_object('staff_id', jsonb_build_object(
                'from', p_old_staff_id::text, 'to', v_row.staff_id::text));
        END IF;
        INSERT INTO booking_history (booking_id, business_id, event, from_status, to_status,
            actor_type, actor_id, channel, changes, reason, policy_override)
        VALUES (v_row.id, v_row.business_id, 'booking.changed', p_from_status, v_row.status,
            p_actor_type, p_actor_id, p_channel, v_changes, p_reason, p_policy_override);
        INSERT INTO outbox (business_id, topic, aggregate_id, payload)
        VALUES (v_row.business_id, 'booking.changed', v_row.id,
            p_outbox_payload || jsonb_build_object(
                'booking_id', v_row.id::text, 'version', v_row.version,
                'status', v_row.status, 'changes', v_changes));
        RETURN NEXT v_row;
    END
    $$
"""

FORWARDS = [EXPIRE_HOLDS, INSERT_FIRST, MOVE_FIRST]

BACKWARDS = [
    "DROP FUNCTION IF EXISTS booking_move_first(uuid, uuid, uuid[], timestamptz, timestamptz, "
    "timestamptz, timestamptz, uuid, jsonb, text, text, text, text, text, boolean, jsonb)",
    "DROP FUNCTION IF EXISTS booking_insert_first(uuid, uuid, uuid[], timestamptz, timestamptz, "
    "timestamptz, timestamptz, text, text, uuid, uuid, timestamptz, bytea, text, text, text[], "
    "text, text, text, text, text, text, text, jsonb)",
    "DROP FUNCTION IF EXISTS booking_expire_holds_on(uuid[], timestamptz, timestamptz)",
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
