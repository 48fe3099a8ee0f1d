"""Writers of one staff member or resource queue only when their times can overlap.

allocation_write_lock (2026-12-02T04:12) took one advisory key per resource, held to
commit: every booking of one member of staff waited for the previous one's commit (its
WAL flush) whatever its time. 16 writers on 4 staff made 4 queues, booking_place averaged
13 ms of mostly "Lock: advisory" waits in the SMS benchmark's burst (bench/RESULTS.md,
2026-12-02 18:25 UTC). Now one key per resource and 30-minute bucket of Unix time the range
touches (allocation_write_lock(p_resources uuid[], p_during tstzrange[]), all keys in
order): overlapping writes still share a key and queue instead of deadlocking in
allocation_no_overlap's check; other times of the same resource do not wait. A move also
takes the keys of the place it leaves, so two bookings swapped at once queue. The
constraint stays the arbiter.
The functions' current homes are in src/booking/bookings/sql/.
Self-contained: raw SQL only; backwards restores the 04:12 lock and the 05:10
booking_place and 04:12 booking_move that call it.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T18:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "allocation_write_lock per resource and half hour: other times do not queue"

ALLOCATION_WRITE_LOCK = r"""
CREATE OR REPLACE FUNCTION allocation_write_lock(p_resources uuid[], p_during tstzrange[])
    RETURNS void
    LANGUAGE plpgsql
AS $$
    DECLARE
        v_key integer;
    BEGIN
        FOR v_key IN
            SELECT DISTINCT hashtext(r.id::text || ':' || b.n)
            FROM unnest(p_resources, p_during) AS r(id, during),
                 generate_series(
                     floor(extract(epoch FROM lower(r.during)) / 1800)::bigint,
                     ceil(extract(epoch FROM upper(r.during)) / 1800)::bigint - 1) AS b(n)
            WHERE r.id IS NOT NULL
            ORDER BY 1
        LOOP
            PERFORM pg_advisory_xact_lock(1, v_key);
        END LOOP;
    END
$$
"""

BOOKING_PLACE = r"""
CREATE OR REPLACE FUNCTION booking_place(
    p_business_id uuid, p_service_id uuid, p_staff_ids uuid[], p_resource_ids uuid[],
    p_starts_at timestamptz, p_ends_at timestamptz,
    p_blocked_from timestamptz, p_blocked_until timestamptz,
    p_status text, p_channel text, p_codes text[], p_event text,
    p_actor_type text, p_actor_id text, p_created_by text,
    p_customer_id uuid DEFAULT NULL, p_partner_id uuid DEFAULT NULL,
    p_customer_name text DEFAULT NULL, p_customer_phone text DEFAULT NULL,
    p_customer_locale text DEFAULT NULL,
    p_hold_expires_at timestamptz DEFAULT NULL, p_hold_token_hash bytea DEFAULT NULL,
    p_notes text DEFAULT '', p_outbox_payload jsonb DEFAULT NULL,
    p_config_version bigint DEFAULT NULL
) RETURNS SETOF booking
    LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan  -- planned once per connection (docs/decisions.md)
AS $$
    DECLARE
        v_customer uuid := p_customer_id;
        v_during tstzrange := tstzrange(p_blocked_from, p_blocked_until, '[)');
        v_resources uuid[] := CASE WHEN cardinality(p_resource_ids) > 0
                                   THEN p_resource_ids ELSE ARRAY[NULL]::uuid[] END;
        v_staff uuid;
        v_resource uuid;
        v_code integer := 1;
        v_row booking;
        v_found boolean := false;
        v_held uuid[] := '{}';  -- candidates found held (probed or refused)
        v_free uuid[] := '{}';  -- resources probed free
        v_staff_held uuid[] := '{}';  -- staff found held by a live allocation
        v_customer_due boolean := p_customer_phone IS NOT NULL;
        v_detail text;
        v_constraint text;
    BEGIN
        IF p_config_version IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM business
                WHERE id = p_business_id AND config_version = p_config_version) THEN
            RAISE EXCEPTION 'the business''s booking rules changed since they were read'
                USING ERRCODE = 'BK001';
        END IF;
        FOREACH v_resource IN ARRAY p_resource_ids LOOP
            EXIT WHEN NOT EXISTS (
                SELECT 1 FROM allocation a
                WHERE a.business_id = p_business_id AND a.resource_id = v_resource
                  AND a.active AND a.during && v_during
                  AND NOT EXISTS (
                      SELECT 1 FROM booking b
                      WHERE b.business_id = a.business_id AND b.id = a.booking_id
                        AND b.status = 'held' AND b.hold_expires_at <= now()));
            v_held := v_held || v_resource;
        END LOOP;
        IF cardinality(p_resource_ids) > 0 AND p_resource_ids <@ v_held THEN
            RETURN;
        END IF;
        FOREACH v_staff IN ARRAY p_staff_ids LOOP
            EXIT WHEN NOT EXISTS (
                SELECT 1 FROM allocation a
                WHERE a.business_id = p_business_id AND a.resource_id = v_staff
                  AND a.active AND a.during && v_during
                  AND NOT EXISTS (
                      SELECT 1 FROM booking b
                      WHERE b.business_id = a.business_id AND b.id = a.booking_id
                        AND b.status = 'held' AND b.hold_expires_at <= now()));
            v_staff_held := v_staff_held || v_staff;
        END LOOP;
        IF p_staff_ids <@ v_staff_held THEN
            RETURN;
        END IF;
        PERFORM booking_expire_holds_on(
            p_business_id, p_staff_ids || p_resource_ids, v_during);
        <<staff_loop>>
        FOREACH v_staff IN ARRAY p_staff_ids LOOP
            EXIT WHEN cardinality(p_resource_ids) > 0 AND p_resource_ids <@ v_held;
            CONTINUE WHEN v_staff = ANY (v_staff_held) OR EXISTS (
                SELECT 1 FROM allocation WHERE business_id = p_business_id
                  AND resource_id = v_staff AND active AND during && v_during);
            <<resource_loop>>
            FOREACH v_resource IN ARRAY v_resources LOOP
                CONTINUE WHEN v_resource = ANY (v_held);
                IF v_resource IS NOT NULL AND NOT v_resource = ANY (v_free) THEN
                    IF EXISTS (
                        SELECT 1 FROM allocation WHERE business_id = p_business_id
                          AND resource_id = v_resource AND active AND during && v_during)
                    THEN
                        v_held := v_held || v_resource;
                        CONTINUE resource_loop;
                    END IF;
                    v_free := v_free || v_resource;
                END IF;
                IF v_customer_due THEN
                    INSERT INTO customer (business_id, name, phone, locale)
                    VALUES (p_business_id, p_customer_name, p_customer_phone,
                        p_customer_locale)
                    ON CONFLICT (business_id, phone) DO UPDATE SET locale = EXCLUDED.locale
                    RETURNING id INTO v_customer;
                    v_customer_due := false;
                END IF;
                LOOP  -- reference codes are random: a clash retries with the next code
                    BEGIN
                        PERFORM allocation_write_lock(
                            ARRAY[v_staff, v_resource], ARRAY[v_during, v_during]);
                        INSERT INTO booking (business_id, staff_id, resource_id, service_id,
                            customer_id, partner_id, status, channel, reference_code,
                            starts_at, ends_at, blocked_from, blocked_until, hold_expires_at,
                            hold_token_hash, notes, created_by)
                        VALUES (p_business_id, v_staff, v_resource, p_service_id, v_customer,
                            p_partner_id, p_status, p_channel, p_codes[v_code], p_starts_at,
                            p_ends_at, p_blocked_from, p_blocked_until, p_hold_expires_at,
                            p_hold_token_hash, p_notes, p_created_by)
                        RETURNING * INTO v_row;
                        v_found := true;
                        EXIT staff_loop;
                    EXCEPTION
                        WHEN exclusion_violation THEN
                            -- whose allocation was refused: the staff member's, or the resource's
                            GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL;
                            CONTINUE staff_loop WHEN position(v_staff::text IN v_detail) > 0;
                            v_held := v_held || v_resource;
                            CONTINUE resource_loop;
                        WHEN unique_violation THEN
                            GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
                            IF v_constraint NOT LIKE '%reference_code%'
                               OR v_code >= cardinality(p_codes) THEN
                                RAISE;
                            END IF;
                            v_code := v_code + 1;
                    END;
                END LOOP;
            END LOOP;
        END LOOP;
        IF NOT v_found THEN
            RETURN;
        END IF;
        INSERT INTO booking_history (booking_id, business_id, event, from_status, to_status,
            actor_type, actor_id, channel, changes, reason, policy_override)
        VALUES (v_row.id, v_row.business_id, p_event, NULL, v_row.status, p_actor_type,
            p_actor_id, p_channel, '{}'::jsonb, NULL, false);
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

BOOKING_MOVE = r"""
CREATE OR REPLACE FUNCTION booking_move(
    p_booking_id uuid, p_business_id uuid, p_service_id uuid,
    p_staff_ids uuid[], p_resource_ids uuid[],
    p_starts_at timestamptz, p_ends_at timestamptz,
    p_blocked_from timestamptz, p_blocked_until timestamptz,
    p_changes jsonb, p_from_status text, p_actor_type text, p_actor_id text,
    p_channel text, p_outbox_payload jsonb,
    p_reason text DEFAULT NULL, p_policy_override boolean DEFAULT false,
    p_count_change boolean DEFAULT true
) RETURNS SETOF booking
    LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan  -- planned once per connection (docs/decisions.md)
AS $$
    DECLARE
        v_during tstzrange := tstzrange(p_blocked_from, p_blocked_until, '[)');
        v_resources uuid[] := CASE WHEN cardinality(p_resource_ids) > 0
                                   THEN p_resource_ids ELSE ARRAY[NULL]::uuid[] END;
        v_old booking;
        v_staff uuid;
        v_resource uuid;
        v_row booking;
        v_found boolean := false;
        v_detail text;
        v_changes jsonb := p_changes;
        v_old_during tstzrange;
    BEGIN
        SELECT * INTO v_old FROM booking
        WHERE business_id = p_business_id AND id = p_booking_id;
        v_old_during := tstzrange(v_old.blocked_from, v_old.blocked_until, '[)');
        PERFORM booking_expire_holds_on(
            p_business_id, p_staff_ids || p_resource_ids, v_during);
        <<staff_loop>>
        FOREACH v_staff IN ARRAY p_staff_ids LOOP
            <<resource_loop>>
            FOREACH v_resource IN ARRAY v_resources LOOP
                BEGIN
                    PERFORM allocation_write_lock(
                        ARRAY[v_staff, v_resource, v_old.staff_id, v_old.resource_id],
                        ARRAY[v_during, v_during, v_old_during, v_old_during]);
                    UPDATE booking SET staff_id = v_staff, resource_id = v_resource,
                        service_id = p_service_id,
                        starts_at = p_starts_at, ends_at = p_ends_at,
                        blocked_from = p_blocked_from, blocked_until = p_blocked_until,
                        version = version + 1,
                        change_count = change_count + CASE WHEN p_count_change THEN 1 ELSE 0 END,
                        updated_at = now()
                    WHERE business_id = p_business_id AND id = p_booking_id
                    RETURNING * INTO v_row;
                    v_found := true;
                    EXIT staff_loop;
                EXCEPTION WHEN exclusion_violation THEN
                    GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL;
                    CONTINUE staff_loop WHEN position(v_staff::text IN v_detail) > 0;
                END;
            END LOOP;
        END LOOP;
        IF NOT v_found THEN
            RETURN;
        END IF;
        IF v_row.staff_id IS DISTINCT FROM v_old.staff_id THEN
            v_changes := v_changes || jsonb_build_object('staff_id', jsonb_build_object(
                'from', v_old.staff_id::text, 'to', v_row.staff_id::text));
        END IF;
        IF v_row.resource_id IS DISTINCT FROM v_old.resource_id THEN
            v_changes := v_changes || jsonb_build_object('resource_id', jsonb_build_object(
                'from', v_old.resource_id::text, 'to', v_row.resource_id::text));
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

ALLOCATION_WRITE_LOCK_BEFORE = r"""
CREATE OR REPLACE FUNCTION allocation_write_lock(p_first uuid, p_second uuid) RETURNS void
    LANGUAGE plpgsql
AS $$
    DECLARE
        v_first integer := hashtext(p_first::text);
        v_second integer := hashtext(p_second::text);
    BEGIN
        IF p_second IS NULL OR v_first = v_second THEN
            PERFORM pg_advisory_xact_lock(1, v_first);
        ELSE
            PERFORM pg_advisory_xact_lock(1, least(v_first, v_second));
            PERFORM pg_advisory_xact_lock(1, greatest(v_first, v_second));
        END IF;
    END
$$
"""

BOOKING_PLACE_BEFORE = r"""
CREATE OR REPLACE FUNCTION booking_place(
    p_business_id uuid, p_service_id uuid, p_staff_ids uuid[], p_resource_ids uuid[],
    p_starts_at timestamptz, p_ends_at timestamptz,
    p_blocked_from timestamptz, p_blocked_until timestamptz,
    p_status text, p_channel text, p_codes text[], p_event text,
    p_actor_type text, p_actor_id text, p_created_by text,
    p_customer_id uuid DEFAULT NULL, p_partner_id uuid DEFAULT NULL,
    p_customer_name text DEFAULT NULL, p_customer_phone text DEFAULT NULL,
    p_customer_locale text DEFAULT NULL,
    p_hold_expires_at timestamptz DEFAULT NULL, p_hold_token_hash bytea DEFAULT NULL,
    p_notes text DEFAULT '', p_outbox_payload jsonb DEFAULT NULL,
    p_config_version bigint DEFAULT NULL
) RETURNS SETOF booking
    LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan  -- planned once per connection (docs/decisions.md)
AS $$
    DECLARE
        v_customer uuid := p_customer_id;
        v_during tstzrange := tstzrange(p_blocked_from, p_blocked_until, '[)');
        v_resources uuid[] := CASE WHEN cardinality(p_resource_ids) > 0
                                   THEN p_resource_ids ELSE ARRAY[NULL]::uuid[] END;
        v_staff uuid;
        v_resource uuid;
        v_code integer := 1;
        v_row booking;
        v_found boolean := false;
        v_held uuid[] := '{}';  -- candidates found held (probed or refused)
        v_free uuid[] := '{}';  -- resources probed free
        v_staff_held uuid[] := '{}';  -- staff found held by a live allocation
        v_customer_due boolean := p_customer_phone IS NOT NULL;
        v_detail text;
        v_constraint text;
    BEGIN
        IF p_config_version IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM business
                WHERE id = p_business_id AND config_version = p_config_version) THEN
            RAISE EXCEPTION 'the business''s booking rules changed since they were read'
                USING ERRCODE = 'BK001';
        END IF;
        FOREACH v_resource IN ARRAY p_resource_ids LOOP
            EXIT WHEN NOT EXISTS (
                SELECT 1 FROM allocation a
                WHERE a.business_id = p_business_id AND a.resource_id = v_resource
                  AND a.active AND a.during && v_during
                  AND NOT EXISTS (
                      SELECT 1 FROM booking b
                      WHERE b.business_id = a.business_id AND b.id = a.booking_id
                        AND b.status = 'held' AND b.hold_expires_at <= now()));
            v_held := v_held || v_resource;
        END LOOP;
        IF cardinality(p_resource_ids) > 0 AND p_resource_ids <@ v_held THEN
            RETURN;
        END IF;
        FOREACH v_staff IN ARRAY p_staff_ids LOOP
            EXIT WHEN NOT EXISTS (
                SELECT 1 FROM allocation a
                WHERE a.business_id = p_business_id AND a.resource_id = v_staff
                  AND a.active AND a.during && v_during
                  AND NOT EXISTS (
                      SELECT 1 FROM booking b
                      WHERE b.business_id = a.business_id AND b.id = a.booking_id
                        AND b.status = 'held' AND b.hold_expires_at <= now()));
            v_staff_held := v_staff_held || v_staff;
        END LOOP;
        IF p_staff_ids <@ v_staff_held THEN
            RETURN;
        END IF;
        PERFORM booking_expire_holds_on(
            p_business_id, p_staff_ids || p_resource_ids, v_during);
        <<staff_loop>>
        FOREACH v_staff IN ARRAY p_staff_ids LOOP
            EXIT WHEN cardinality(p_resource_ids) > 0 AND p_resource_ids <@ v_held;
            CONTINUE WHEN v_staff = ANY (v_staff_held) OR EXISTS (
                SELECT 1 FROM allocation WHERE business_id = p_business_id
                  AND resource_id = v_staff AND active AND during && v_during);
            <<resource_loop>>
            FOREACH v_resource IN ARRAY v_resources LOOP
                CONTINUE WHEN v_resource = ANY (v_held);
                IF v_resource IS NOT NULL AND NOT v_resource = ANY (v_free) THEN
                    IF EXISTS (
                        SELECT 1 FROM allocation WHERE business_id = p_business_id
                          AND resource_id = v_resource AND active AND during && v_during)
                    THEN
                        v_held := v_held || v_resource;
                        CONTINUE resource_loop;
                    END IF;
                    v_free := v_free || v_resource;
                END IF;
                IF v_customer_due THEN
                    INSERT INTO customer (business_id, name, phone, locale)
                    VALUES (p_business_id, p_customer_name, p_customer_phone,
                        p_customer_locale)
                    ON CONFLICT (business_id, phone) DO UPDATE SET locale = EXCLUDED.locale
                    RETURNING id INTO v_customer;
                    v_customer_due := false;
                END IF;
                LOOP  -- reference codes are random: a clash retries with the next code
                    BEGIN
                        PERFORM allocation_write_lock(v_staff, v_resource);
                        INSERT INTO booking (business_id, staff_id, resource_id, service_id,
                            customer_id, partner_id, status, channel, reference_code,
                            starts_at, ends_at, blocked_from, blocked_until, hold_expires_at,
                            hold_token_hash, notes, created_by)
                        VALUES (p_business_id, v_staff, v_resource, p_service_id, v_customer,
                            p_partner_id, p_status, p_channel, p_codes[v_code], p_starts_at,
                            p_ends_at, p_blocked_from, p_blocked_until, p_hold_expires_at,
                            p_hold_token_hash, p_notes, p_created_by)
                        RETURNING * INTO v_row;
                        v_found := true;
                        EXIT staff_loop;
                    EXCEPTION
                        WHEN exclusion_violation THEN
                            -- whose allocation was refused: the staff member's, or the resource's
                            GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL;
                            CONTINUE staff_loop WHEN position(v_staff::text IN v_detail) > 0;
                            v_held := v_held || v_resource;
                            CONTINUE resource_loop;
                        WHEN unique_violation THEN
                            GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
                            IF v_constraint NOT LIKE '%reference_code%'
                               OR v_code >= cardinality(p_codes) THEN
                                RAISE;
                            END IF;
                            v_code := v_code + 1;
                    END;
                END LOOP;
            END LOOP;
        END LOOP;
        IF NOT v_found THEN
            RETURN;
        END IF;
        INSERT INTO booking_history (booking_id, business_id, event, from_status, to_status,
            actor_type, actor_id, channel, changes, reason, policy_override)
        VALUES (v_row.id, v_row.business_id, p_event, NULL, v_row.status, p_actor_type,
            p_actor_id, p_channel, '{}'::jsonb, NULL, false);
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

BOOKING_MOVE_BEFORE = r"""
CREATE OR REPLACE FUNCTION booking_move(
    p_booking_id uuid, p_business_id uuid, p_service_id uuid,
    p_staff_ids uuid[], p_resource_ids uuid[],
    p_starts_at timestamptz, p_ends_at timestamptz,
    p_blocked_from timestamptz, p_blocked_until timestamptz,
    p_changes jsonb, p_from_status text, p_actor_type text, p_actor_id text,
    p_channel text, p_outbox_payload jsonb,
    p_reason text DEFAULT NULL, p_policy_override boolean DEFAULT false,
    p_count_change boolean DEFAULT true
) RETURNS SETOF booking
    LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan  -- planned once per connection (docs/decisions.md)
AS $$
    DECLARE
        v_during tstzrange := tstzrange(p_blocked_from, p_blocked_until, '[)');
        v_resources uuid[] := CASE WHEN cardinality(p_resource_ids) > 0
                                   THEN p_resource_ids ELSE ARRAY[NULL]::uuid[] END;
        v_old booking;
        v_staff uuid;
        v_resource uuid;
        v_row booking;
        v_found boolean := false;
        v_detail text;
        v_changes jsonb := p_changes;
    BEGIN
        SELECT * INTO v_old FROM booking
        WHERE business_id = p_business_id AND id = p_booking_id;
        PERFORM booking_expire_holds_on(
            p_business_id, p_staff_ids || p_resource_ids, v_during);
        <<staff_loop>>
        FOREACH v_staff IN ARRAY p_staff_ids LOOP
            <<resource_loop>>
            FOREACH v_resource IN ARRAY v_resources LOOP
                BEGIN
                    PERFORM allocation_write_lock(v_staff, v_resource);
                    UPDATE booking SET staff_id = v_staff, resource_id = v_resource,
                        service_id = p_service_id,
                        starts_at = p_starts_at, ends_at = p_ends_at,
                        blocked_from = p_blocked_from, blocked_until = p_blocked_until,
                        version = version + 1,
                        change_count = change_count + CASE WHEN p_count_change THEN 1 ELSE 0 END,
                        updated_at = now()
                    WHERE business_id = p_business_id AND id = p_booking_id
                    RETURNING * INTO v_row;
                    v_found := true;
                    EXIT staff_loop;
                EXCEPTION WHEN exclusion_violation THEN
                    GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL;
                    CONTINUE staff_loop WHEN position(v_staff::text IN v_detail) > 0;
                END;
            END LOOP;
        END LOOP;
        IF NOT v_found THEN
            RETURN;
        END IF;
        IF v_row.staff_id IS DISTINCT FROM v_old.staff_id THEN
            v_changes := v_changes || jsonb_build_object('staff_id', jsonb_build_object(
                'from', v_old.staff_id::text, 'to', v_row.staff_id::text));
        END IF;
        IF v_row.resource_id IS DISTINCT FROM v_old.resource_id THEN
            v_changes := v_changes || jsonb_build_object('resource_id', jsonb_build_object(
                'from', v_old.resource_id::text, 'to', v_row.resource_id::text));
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

FORWARDS = [
    ALLOCATION_WRITE_LOCK,
    BOOKING_PLACE,
    BOOKING_MOVE,
    "DROP FUNCTION allocation_write_lock(uuid, uuid)",
]

BACKWARDS = [
    ALLOCATION_WRITE_LOCK_BEFORE,
    BOOKING_PLACE_BEFORE,
    BOOKING_MOVE_BEFORE,
    "DROP FUNCTION allocation_write_lock(uuid[], tstzrange[])",
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
