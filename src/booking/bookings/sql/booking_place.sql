-- A new booking or hold in one statement (the hot path). Called with named arguments
-- from booking.bookings.store.insert_active.
--
-- * p_config_version: when given, refuse (SQLSTATE BK001) unless it is still the
--   business's: the caller's remembered rules are current.
-- * no row at once, before anything else, while every resource (or every member of
--   staff) is held by a live allocation - a stale hold does not count, the expiry below
--   would release it: the losers of a race on the last cabins, or on one member of
--   staff's slot, hear it from one probe per candidate, without the hold expiry or any
--   combination tried (a cabin race loser otherwise expired holds on 25 candidates and
--   probed the 5 busy staff before finding every cabin taken). What these probes found
--   held is not probed again;
-- * stale holds on the candidate resources are expired (booking_expire_holds_on);
-- * combinations are tried in order: each member of p_staff_ids with each of
--   p_resource_ids (or with none when p_resource_ids is empty). Each candidate is
--   probed once, on its own (an index probe on allocation_no_overlap with its id), and
--   only until the first free combination: a held one is skipped, a refused resource
--   is skipped for the remaining staff too, and once every resource is held the answer
--   is "no row" at once - the losers of a race on the last cabin hear it without trying
--   20 staff x 5 cabins. (2026-12-02T01:05 read every candidate in one statement; that
--   join let the planner scan the business's allocations when its statistics were
--   stale, about 1 ms per booking even with one candidate.)
-- * the customer (name, E.164 phone, locale; validated by the caller) is upserted just
--   before the first insert, never by a caller that gets no row;
-- * the row's allocations are written by its trigger (booking_allocations_sync), under
--   allocation_write_lock on the combination and its time (concurrent writers of one
--   staff member or resource at overlapping times queue instead of deadlocking in the
--   exclusion check);
--   allocation_no_overlap refusing one (23P01) moves on to the next combination, a
--   reference-code clash retries with the next of p_codes.
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
