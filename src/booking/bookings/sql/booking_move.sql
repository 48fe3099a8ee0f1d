-- A ticket change in one statement: the booking keeps its id, reference and history;
-- its allocations move with the row (trigger booking_allocations_sync) in the same
-- statement, so the customer always holds exactly one of the old and the new place.
-- Called with named arguments from booking.bookings.store.move.
--
-- Stale holds on the candidates are expired first; combinations (each of p_staff_ids
-- with each of p_resource_ids, or with none) are tried in order. As in booking_place,
-- each candidate is first probed on its own (an index probe on allocation_no_overlap,
-- the booking's own allocations not counted): one held at the new time is skipped
-- without an attempt, a held resource for the remaining staff too, and once every
-- resource is held there is no row at once. (Before 2026-12-03 every busy candidate
-- cost a full attempt - the UPDATE, its allocation rows and a rolled-back
-- subtransaction, about 0.4 ms each: a counter move onto the one free member of staff
-- of twenty tried up to nineteen.) An attempt first takes allocation_write_lock on its
-- combination at the new time and on the booking's old staff and resource at the old
-- time (two bookings swapped by two desks at once queue instead of deadlocking); a
-- 23P01 from a writer that committed after the probe moves on to the next. p_changes
-- holds the start, end and service changes known before the move; the staff and
-- resource changes are added here, once known. Then the booking.changed
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
        v_held uuid[] := '{}';  -- resources found held (probed or refused)
        v_free uuid[] := '{}';  -- resources probed free
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
            EXIT WHEN cardinality(p_resource_ids) > 0 AND p_resource_ids <@ v_held;
            CONTINUE WHEN EXISTS (
                SELECT 1 FROM allocation WHERE business_id = p_business_id
                  AND resource_id = v_staff AND active AND during && v_during
                  AND booking_id IS DISTINCT FROM p_booking_id);
            <<resource_loop>>
            FOREACH v_resource IN ARRAY v_resources LOOP
                CONTINUE WHEN v_resource = ANY (v_held);
                IF v_resource IS NOT NULL AND NOT v_resource = ANY (v_free) THEN
                    IF EXISTS (
                        SELECT 1 FROM allocation WHERE business_id = p_business_id
                          AND resource_id = v_resource AND active AND during && v_during
                          AND booking_id IS DISTINCT FROM p_booking_id)
                    THEN
                        v_held := v_held || v_resource;
                        CONTINUE resource_loop;
                    END IF;
                    v_free := v_free || v_resource;
                END IF;
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
                    IF v_resource IS NOT NULL THEN
                        v_held := v_held || v_resource;
                    END IF;
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
