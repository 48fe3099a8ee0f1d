"""Allocations: every booking, hold and block holds its resources under one constraint.

* ``resource``: what can be booked, per business: members of staff (kind ``staff``,
  same id as their ``staff`` row, kept in step by the trigger ``staff_resource_sync``),
  rooms, chairs and devices (``group_name`` names the group a service can ask for, e.g.
  "cabin"). ``service.resource_group``: the group a service needs one of, or NULL.
* ``allocation``: a resource for a time range including buffers: a booking's member of
  staff (kind ``staff``), its room/chair/device (kind ``resource``, ``booking.resource_id``)
  or a block (kind ``block``: time off). ``allocation_no_overlap`` (business, resource,
  range) over active rows is the arbiter for every kind; it replaces
  ``booking_no_staff_overlap``. A booking's allocations follow its row (trigger
  ``booking_allocations_sync``): inserted with it, moved with it, active while its status
  holds time. A block over a booking takes that booking's allocation (``lost``) so two
  active allocations never overlap; the lost-slot recovery then offers alternatives.
* The write functions take named arguments and replace the positional ones:
  ``booking_place`` (was ``booking_insert_first`` / ``booking_insert_current``),
  ``booking_move`` (was ``booking_move_first``), ``booking_expire_holds_on`` (now by
  allocation). Their current text lives in ``src/booking/bookings/sql/``; these are
  frozen copies.

Existing data is carried over: every staff member becomes a resource, every booking gets
its staff allocation, every time off row its block (in the order they were added).
Backwards restores the old constraint and functions (frozen copies of 2026-11-27T02:10).
Self-contained: raw SQL only.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "resource and allocation tables under one exclusion constraint; named write functions"

_BOOKING_HOLDS_TIME = """
-- The statuses in which a booking holds its time (Python: booking.bookings.policy.ACTIVE).
CREATE OR REPLACE FUNCTION booking_holds_time(p_status text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT p_status IN ('held', 'pending', 'confirmed', 'checked_in') $$
"""
_STAFF_RESOURCE_SYNC = """
-- Trigger on staff (AFTER INSERT, UPDATE OF name or active): every member of staff is a
-- resource of kind 'staff' with the same id, so allocations name staff and rooms alike.
CREATE OR REPLACE FUNCTION staff_resource_sync() RETURNS trigger
    LANGUAGE plpgsql
AS $$
    BEGIN
        INSERT INTO resource (business_id, id, kind, name, active)
        VALUES (NEW.business_id, NEW.id, 'staff', NEW.name, NEW.active)
        ON CONFLICT (business_id, id) DO UPDATE
            SET name = EXCLUDED.name, active = EXCLUDED.active;
        RETURN NULL;
    END
$$
"""
_BOOKING_ALLOCATIONS_SYNC = """
-- Trigger on booking (AFTER INSERT, AFTER UPDATE of staff, resource, time or status):
-- a booking's allocations follow its row, in the same statement, whoever writes it.
-- kind 'staff' is the member of staff; kind 'resource' the room/chair/device if any.
-- Moving (staff, resource or time) replaces the allocations: the new place is checked
-- by allocation_no_overlap and the old one released by the same update. A status change only
-- flips ``active``; an allocation a block took (``lost``) stays inactive until moved.
CREATE OR REPLACE FUNCTION booking_allocations_sync() RETURNS trigger
    LANGUAGE plpgsql
AS $$
    DECLARE
        v_during tstzrange := tstzrange(NEW.blocked_from, NEW.blocked_until, '[)');
        v_active boolean := booking_holds_time(NEW.status);
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO allocation (business_id, resource_id, kind, booking_id, during, active)
            VALUES (NEW.business_id, NEW.staff_id, 'staff', NEW.id, v_during, v_active);
            IF NEW.resource_id IS NOT NULL THEN
                INSERT INTO allocation (business_id, resource_id, kind, booking_id, during,
                    active)
                VALUES (NEW.business_id, NEW.resource_id, 'resource', NEW.id, v_during,
                    v_active);
            END IF;
            RETURN NULL;
        END IF;
        IF NEW.staff_id = OLD.staff_id AND NEW.resource_id IS NOT DISTINCT FROM OLD.resource_id
           AND NEW.blocked_from = OLD.blocked_from AND NEW.blocked_until = OLD.blocked_until THEN
            UPDATE allocation SET active = v_active AND NOT lost
            WHERE business_id = NEW.business_id AND booking_id = NEW.id;
            RETURN NULL;
        END IF;
        -- Moved: each allocation row moves with it (its old place is released by the
        -- same update, so a move onto time overlapping its own old place is fine).
        UPDATE allocation SET resource_id = NEW.staff_id, during = v_during,
            active = v_active, lost = false
        WHERE business_id = NEW.business_id AND booking_id = NEW.id AND kind = 'staff';
        IF NEW.resource_id IS NULL THEN
            DELETE FROM allocation
            WHERE business_id = NEW.business_id AND booking_id = NEW.id AND kind = 'resource';
        ELSIF OLD.resource_id IS NULL THEN
            INSERT INTO allocation (business_id, resource_id, kind, booking_id, during, active)
            VALUES (NEW.business_id, NEW.resource_id, 'resource', NEW.id, v_during, v_active);
        ELSE
            UPDATE allocation SET resource_id = NEW.resource_id, during = v_during,
                active = v_active, lost = false
            WHERE business_id = NEW.business_id AND booking_id = NEW.id
              AND kind = 'resource';
        END IF;
        RETURN NULL;
    END
$$
"""
_ALLOCATION_BLOCK = """
-- A block (time off today) on a resource: the database then refuses any booking over it.
-- Bookings already there keep their row but lose their allocation on that resource
-- (``lost``, inactive: the lost-slot recovery marks them at risk and offers held
-- alternatives in the same transaction), so two active allocations never overlap.
-- Time another active block already covers gets an inactive (covered) block.
CREATE OR REPLACE FUNCTION allocation_block(
    p_business_id uuid, p_resource_id uuid, p_time_off_id uuid, p_during tstzrange
) RETURNS void
    LANGUAGE plpgsql
AS $$
    BEGIN
        UPDATE allocation SET active = false, lost = true
        WHERE business_id = p_business_id AND resource_id = p_resource_id AND active
          AND kind <> 'block' AND during && p_during;
        INSERT INTO allocation (business_id, resource_id, kind, time_off_id, during, active)
        VALUES (p_business_id, p_resource_id, 'block', p_time_off_id, p_during,
            NOT EXISTS (SELECT 1 FROM allocation
                        WHERE business_id = p_business_id AND resource_id = p_resource_id
                          AND active AND kind = 'block' AND during && p_during));
    END
$$
"""
_TIME_OFF_BLOCK_SYNC = """
-- Trigger on time_off (AFTER INSERT OR DELETE): each row is a block allocation on its
-- member of staff (see allocation_block). When time off is removed, what it covered or
-- took gets its time back where nothing else holds it now.
CREATE OR REPLACE FUNCTION time_off_block_sync() RETURNS trigger
    LANGUAGE plpgsql
AS $$
    DECLARE
        v_id uuid;
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM allocation_block(NEW.business_id, NEW.staff_id, NEW.id,
                tstzrange(NEW.starts_at, NEW.ends_at, '[)'));
            RETURN NULL;
        END IF;
        -- the block row itself went with its time_off row (ON DELETE CASCADE)
        FOR v_id IN
            SELECT a.id FROM allocation a LEFT JOIN booking b
                ON b.business_id = a.business_id AND b.id = a.booking_id
            WHERE a.business_id = OLD.business_id AND a.resource_id = OLD.staff_id
              AND NOT a.active AND (a.kind = 'block' OR (a.lost AND booking_holds_time(b.status)))
              AND a.during && tstzrange(OLD.starts_at, OLD.ends_at, '[)')
            ORDER BY a.kind = 'block' DESC, lower(a.during)
        LOOP
            BEGIN
                UPDATE allocation SET active = true, lost = false
                WHERE business_id = OLD.business_id AND id = v_id;
            EXCEPTION WHEN exclusion_violation THEN
                NULL;  -- something else holds that time now; leave it as it is
            END;
        END LOOP;
        RETURN NULL;
    END
$$
"""
_BOOKING_EXPIRE_HOLDS_ON = """
-- The lazy half of hold release: holds past their expiry that sit on any of these
-- resources in the range are expired (with their history) before a write there, so
-- a stale hold never makes a free time look taken. The sweeper does the rest.
CREATE OR REPLACE FUNCTION booking_expire_holds_on(
    p_business_id uuid, p_resource_ids uuid[], p_during tstzrange
) RETURNS void
    LANGUAGE plpgsql
AS $$
    BEGIN
        WITH released AS (
            UPDATE booking SET status = 'expired', version = version + 1, updated_at = now(),
                   hold_token_hash = NULL
            WHERE business_id = p_business_id AND status = 'held' AND hold_expires_at <= now()
              AND id IN (SELECT booking_id FROM allocation
                         WHERE business_id = p_business_id AND active
                           AND resource_id = ANY(p_resource_ids) AND during && p_during)
            RETURNING id, business_id, status
        )
        INSERT INTO booking_history (booking_id, business_id, event, from_status, to_status,
            actor_type, actor_id, channel, changes, reason, policy_override)
        SELECT id, business_id, 'hold.expired', 'held', status, 'system', 'hold-release',
               'system', '{}'::jsonb, NULL, false
        FROM released;
    END
$$
"""
_BOOKING_PLACE = """
-- A new booking or hold in one statement (the hot path). Called with named arguments
-- from booking.bookings.store.insert_active.
--
-- * p_config_version: when given, refuse (SQLSTATE BK001) unless it is still the
--   business's: the caller's remembered rules are current.
-- * the customer (name, E.164 phone, locale; validated by the caller) is upserted;
-- * stale holds on the candidate resources are expired (booking_expire_holds_on);
-- * combinations are tried in order: each member of p_staff_ids with each of
--   p_resource_ids (or with none when p_resource_ids is empty). The row's allocations
--   are written by its trigger (booking_allocations_sync); allocation_no_overlap
--   refusing one (23P01) moves on to the next combination, a reference-code clash
--   retries with the next of p_codes. Staff or resources already held by a committed
--   allocation are skipped without trying.
-- * the history event and, when p_outbox_payload is given, the outbox row are
--   appended as booking.bookings.store.record_event writes them.
-- No row when every combination is taken.
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
        v_detail text;
        v_constraint text;
    BEGIN
        IF p_config_version IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM business
                WHERE id = p_business_id AND config_version = p_config_version) THEN
            RAISE EXCEPTION 'the business''s booking rules changed since they were read'
                USING ERRCODE = 'BK001';
        END IF;
        IF p_customer_phone IS NOT NULL THEN
            INSERT INTO customer (business_id, name, phone, locale)
            VALUES (p_business_id, p_customer_name, p_customer_phone, p_customer_locale)
            ON CONFLICT (business_id, phone) DO UPDATE SET locale = EXCLUDED.locale
            RETURNING id INTO v_customer;
        END IF;
        PERFORM booking_expire_holds_on(
            p_business_id, p_staff_ids || p_resource_ids, v_during);
        <<staff_loop>>
        FOREACH v_staff IN ARRAY p_staff_ids LOOP
            CONTINUE WHEN EXISTS (
                SELECT 1 FROM allocation WHERE business_id = p_business_id
                  AND resource_id = v_staff AND active AND during && v_during);
            <<resource_loop>>
            FOREACH v_resource IN ARRAY v_resources LOOP
                CONTINUE WHEN v_resource IS NOT NULL AND EXISTS (
                    SELECT 1 FROM allocation WHERE business_id = p_business_id
                      AND resource_id = v_resource AND active AND during && v_during);
                LOOP  -- reference codes are random: a clash retries with the next code
                    BEGIN
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
_BOOKING_MOVE = """
-- A ticket change in one statement: the booking keeps its id, reference and history;
-- its allocations move with the row (trigger booking_allocations_sync) in the same
-- statement, so the customer always holds exactly one of the old and the new place.
-- Called with named arguments from booking.bookings.store.move.
--
-- Stale holds on the candidates are expired first; combinations (each of p_staff_ids
-- with each of p_resource_ids, or with none) are tried in order, 23P01 moving on to the
-- next. p_changes holds the start, end and service changes known before the move; the
-- staff and resource changes are added here, once known. Then the booking.changed
-- history event and outbox row. No row when every combination is taken.
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
_OLD_BOOKING_EXPIRE_HOLDS_ON = """
CREATE OR REPLACE FUNCTION public.booking_expire_holds_on(p_staff_ids uuid[], p_blocked_from timestamp with time zone, p_blocked_until timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
    BEGIN

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
;
    END
    $function$
"""
_OLD_BOOKING_INSERT_FIRST = """
CREATE OR REPLACE FUNCTION public.booking_insert_first(p_business_id uuid, p_service_id uuid, p_staff_ids uuid[], p_starts_at timestamp with time zone, p_ends_at timestamp with time zone, p_blocked_from timestamp with time zone, p_blocked_until timestamp with time zone, p_status text, p_channel text, p_customer_id uuid, p_partner_id uuid, p_hold_expires_at timestamp with time zone, p_hold_token_hash bytea, p_notes text, p_created_by text, p_codes text[], p_customer_name text, p_customer_phone text, p_customer_locale text, p_event text, p_actor_type text, p_actor_id text, p_event_channel text, p_outbox_payload jsonb)
 RETURNS SETOF booking
 LANGUAGE plpgsql
AS $function$
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
    $function$
"""
_OLD_BOOKING_INSERT_CURRENT = """
CREATE OR REPLACE FUNCTION public.booking_insert_current(p_config_version bigint, p_business_id uuid, p_service_id uuid, p_staff_ids uuid[], p_starts_at timestamp with time zone, p_ends_at timestamp with time zone, p_blocked_from timestamp with time zone, p_blocked_until timestamp with time zone, p_status text, p_channel text, p_customer_id uuid, p_partner_id uuid, p_hold_expires_at timestamp with time zone, p_hold_token_hash bytea, p_notes text, p_created_by text, p_codes text[], p_customer_name text, p_customer_phone text, p_customer_locale text, p_event text, p_actor_type text, p_actor_id text, p_event_channel text, p_outbox_payload jsonb)
 RETURNS SETOF booking
 LANGUAGE plpgsql
AS $function$
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
    $function$
"""
_OLD_BOOKING_MOVE_FIRST = """
CREATE OR REPLACE FUNCTION public.booking_move_first(p_booking_id uuid, p_service_id uuid, p_staff_ids uuid[], p_starts_at timestamp with time zone, p_ends_at timestamp with time zone, p_blocked_from timestamp with time zone, p_blocked_until timestamp with time zone, p_old_staff_id uuid, p_changes jsonb, p_from_status text, p_actor_type text, p_actor_id text, p_channel text, p_reason text, p_policy_override boolean, p_outbox_payload jsonb)
 RETURNS SETOF booking
 LANGUAGE plpgsql
AS $function$
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
    $function$
"""

FORWARDS = [
    # Composite keys the allocation's foreign keys point at (ready for distribution by business).
    "ALTER TABLE booking ADD CONSTRAINT booking_business_id_id_key UNIQUE (business_id, id)",
    "ALTER TABLE time_off ADD CONSTRAINT time_off_business_id_id_key UNIQUE (business_id, id)",
    """
    CREATE TABLE resource (
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        kind text NOT NULL CHECK (kind IN ('staff', 'room', 'chair', 'device')),
        name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        group_name text CHECK (group_name IS NULL OR length(group_name) BETWEEN 1 AND 100),
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (business_id, id),
        CHECK (kind <> 'staff' OR group_name IS NULL)
    )
    """,
    "CREATE INDEX resource_group_idx ON resource (business_id, group_name) WHERE active",
    "INSERT INTO resource (business_id, id, kind, name, active) "
    "SELECT business_id, id, 'staff', name, active FROM staff",
    """
    ALTER TABLE service ADD COLUMN resource_group text
        CHECK (resource_group IS NULL OR length(resource_group) BETWEEN 1 AND 100)
    """,
    "ALTER TABLE booking ADD COLUMN resource_id uuid",
    """
    ALTER TABLE booking ADD CONSTRAINT booking_resource_fkey
        FOREIGN KEY (business_id, resource_id) REFERENCES resource (business_id, id)
    """,
    """
    CREATE TABLE allocation (
        business_id uuid NOT NULL,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        resource_id uuid NOT NULL,
        kind text NOT NULL CHECK (kind IN ('staff', 'resource', 'block')),
        booking_id uuid,
        time_off_id uuid,
        during tstzrange NOT NULL CHECK (NOT isempty(during)),
        active boolean NOT NULL,
        lost boolean NOT NULL DEFAULT false,
        PRIMARY KEY (business_id, id),
        FOREIGN KEY (business_id, resource_id) REFERENCES resource (business_id, id)
            ON DELETE CASCADE,
        FOREIGN KEY (business_id, booking_id) REFERENCES booking (business_id, id)
            ON DELETE CASCADE,
        FOREIGN KEY (business_id, time_off_id) REFERENCES time_off (business_id, id)
            ON DELETE CASCADE,
        CHECK ((kind = 'block') = (booking_id IS NULL)),
        CHECK (NOT (lost AND active)),
        CONSTRAINT allocation_no_overlap EXCLUDE USING gist (
            business_id WITH =, resource_id WITH =, during WITH &&) WHERE (active)
    )
    """,
    "CREATE UNIQUE INDEX allocation_booking_kind ON allocation (business_id, booking_id, kind) "
    "WHERE booking_id IS NOT NULL",
    _BOOKING_HOLDS_TIME,
    _STAFF_RESOURCE_SYNC,
    _BOOKING_ALLOCATIONS_SYNC,
    _ALLOCATION_BLOCK,
    _TIME_OFF_BLOCK_SYNC,
    # Carried over: today's active bookings never overlap (booking_no_staff_overlap).
    """
    INSERT INTO allocation (business_id, resource_id, kind, booking_id, during, active)
    SELECT business_id, staff_id, 'staff', id, tstzrange(blocked_from, blocked_until, '[)'),
           booking_holds_time(status)
    FROM booking
    """,
    """
    DO $$
    DECLARE
        t record;
    BEGIN
        FOR t IN SELECT * FROM time_off ORDER BY created_at, id LOOP
            PERFORM allocation_block(t.business_id, t.staff_id, t.id,
                tstzrange(t.starts_at, t.ends_at, '[)'));
        END LOOP;
    END
    $$
    """,
    """
    CREATE TRIGGER staff_resource_sync AFTER INSERT OR DELETE OR UPDATE OF name, active
    ON staff FOR EACH ROW EXECUTE FUNCTION staff_resource_sync()
    """,
    """
    CREATE TRIGGER booking_allocations_insert AFTER INSERT ON booking
    FOR EACH ROW EXECUTE FUNCTION booking_allocations_sync()
    """,
    """
    CREATE TRIGGER booking_allocations_update
    AFTER UPDATE OF staff_id, resource_id, blocked_from, blocked_until, status ON booking
    FOR EACH ROW WHEN (
        OLD.staff_id IS DISTINCT FROM NEW.staff_id
        OR OLD.resource_id IS DISTINCT FROM NEW.resource_id
        OR OLD.blocked_from IS DISTINCT FROM NEW.blocked_from
        OR OLD.blocked_until IS DISTINCT FROM NEW.blocked_until
        OR booking_holds_time(OLD.status) <> booking_holds_time(NEW.status))
    EXECUTE FUNCTION booking_allocations_sync()
    """,
    """
    CREATE TRIGGER time_off_block_sync AFTER INSERT OR DELETE ON time_off
    FOR EACH ROW EXECUTE FUNCTION time_off_block_sync()
    """,
    "ALTER TABLE booking DROP CONSTRAINT booking_no_staff_overlap",
    "DROP FUNCTION booking_insert_current",
    "DROP FUNCTION booking_insert_first",
    "DROP FUNCTION booking_move_first",
    "DROP FUNCTION booking_expire_holds_on(uuid[], timestamptz, timestamptz)",
    _BOOKING_EXPIRE_HOLDS_ON,
    _BOOKING_PLACE,
    _BOOKING_MOVE,
]

BACKWARDS = [
    "DROP FUNCTION booking_move",
    "DROP FUNCTION booking_place",
    "DROP FUNCTION booking_expire_holds_on(uuid, uuid[], tstzrange)",
    _OLD_BOOKING_EXPIRE_HOLDS_ON,
    _OLD_BOOKING_INSERT_FIRST,
    _OLD_BOOKING_INSERT_CURRENT,
    _OLD_BOOKING_MOVE_FIRST,
    "DROP TRIGGER time_off_block_sync ON time_off",
    "DROP TRIGGER booking_allocations_update ON booking",
    "DROP TRIGGER booking_allocations_insert ON booking",
    "DROP TRIGGER staff_resource_sync ON staff",
    "DROP TABLE allocation",
    "DROP FUNCTION time_off_block_sync",
    "DROP FUNCTION allocation_block",
    "DROP FUNCTION booking_allocations_sync",
    "DROP FUNCTION staff_resource_sync",
    "DROP FUNCTION booking_holds_time",
    "ALTER TABLE booking DROP COLUMN resource_id",
    "ALTER TABLE service DROP COLUMN resource_group",
    "DROP TABLE resource",
    "ALTER TABLE time_off DROP CONSTRAINT time_off_business_id_id_key",
    "ALTER TABLE booking DROP CONSTRAINT booking_business_id_id_key",
    """
    ALTER TABLE booking ADD CONSTRAINT booking_no_staff_overlap EXCLUDE USING gist (
        staff_id WITH =, tstzrange(blocked_from, blocked_until, '[)') WITH &&)
    WHERE (status IN ('held', 'pending', 'confirmed', 'checked_in'))
    """,
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
