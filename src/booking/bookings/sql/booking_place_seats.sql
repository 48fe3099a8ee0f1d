-- Seats in a group session for a new booking or hold, in one statement. Called with
-- named arguments from booking.bookings.store.insert_seats.
--
-- * holds on the session past their expiry are expired first (the lazy release);
-- * the customer (validated by the caller) is upserted;
-- * the row is inserted at the session's time with its staff and room; the seats are
--   counted by its trigger (session_seats_sync), whose CHECK refuses them when the
--   session is full (23514, session_seats_within_capacity) - the caller maps it;
-- * a reference-code clash tries the next of p_codes (ON CONFLICT, no subtransaction);
-- * the history event and, when p_outbox_payload is given, the outbox row are
--   appended as booking.bookings.store.record_event writes them.
-- No row when the session does not exist in the business.
CREATE OR REPLACE FUNCTION booking_place_seats(
    p_business_id uuid, p_session_id uuid, p_seats integer,
    p_status text, p_channel text, p_codes text[], p_event text,
    p_actor_type text, p_actor_id text, p_created_by text,
    p_customer_id uuid DEFAULT NULL, p_partner_id uuid DEFAULT NULL,
    p_customer_name text DEFAULT NULL, p_customer_phone text DEFAULT NULL,
    p_customer_locale text DEFAULT NULL,
    p_hold_expires_at timestamptz DEFAULT NULL, p_hold_token_hash bytea DEFAULT NULL,
    p_notes text DEFAULT '', p_outbox_payload jsonb DEFAULT NULL
) RETURNS SETOF booking
    LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan  -- planned once per connection (docs/decisions.md)
AS $$
    DECLARE
        v_customer uuid := p_customer_id;
        v_session session;
        v_code text;
        v_row booking;
    BEGIN
        SELECT * INTO v_session FROM session
        WHERE business_id = p_business_id AND id = p_session_id;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        WITH released AS (
            UPDATE booking SET status = 'expired', version = version + 1, updated_at = now(),
                   hold_token_hash = NULL
            WHERE business_id = p_business_id AND session_id = p_session_id
              AND status = 'held' AND hold_expires_at <= now()
            RETURNING id, business_id, status
        )
        INSERT INTO booking_history (booking_id, business_id, event, from_status, to_status,
            actor_type, actor_id, channel, changes, reason, policy_override)
        SELECT id, business_id, 'hold.expired', 'held', status, 'system', 'hold-release',
               'system', '{}'::jsonb, NULL, false
        FROM released;
        IF p_customer_phone IS NOT NULL THEN
            INSERT INTO customer (business_id, name, phone, locale)
            VALUES (p_business_id, p_customer_name, p_customer_phone, p_customer_locale)
            ON CONFLICT (business_id, phone) DO UPDATE SET locale = EXCLUDED.locale
            RETURNING id INTO v_customer;
        END IF;
        FOREACH v_code IN ARRAY p_codes LOOP
            INSERT INTO booking (business_id, staff_id, resource_id, service_id, session_id,
                seats, customer_id, partner_id, status, channel, reference_code, starts_at,
                ends_at, blocked_from, blocked_until, hold_expires_at, hold_token_hash, notes,
                created_by)
            VALUES (p_business_id, v_session.staff_id, v_session.resource_id,
                v_session.service_id, p_session_id, p_seats, v_customer, p_partner_id,
                p_status, p_channel, v_code, v_session.starts_at, v_session.ends_at,
                v_session.blocked_from, v_session.blocked_until, p_hold_expires_at,
                p_hold_token_hash, p_notes, p_created_by)
            ON CONFLICT (business_id, reference_code) DO NOTHING
            RETURNING * INTO v_row;
            EXIT WHEN v_row.id IS NOT NULL;
        END LOOP;
        IF v_row.id IS NULL THEN
            RAISE EXCEPTION 'no free reference code among %', p_codes
                USING ERRCODE = 'unique_violation';
        END IF;
        INSERT INTO booking_history (booking_id, business_id, event, from_status, to_status,
            actor_type, actor_id, channel, changes, reason, policy_override)
        VALUES (v_row.id, v_row.business_id, p_event, NULL, v_row.status, p_actor_type,
            p_actor_id, p_channel, jsonb_build_object('seats', v_row.seats), NULL, false);
        IF p_outbox_payload IS NOT NULL THEN
            INSERT INTO outbox (business_id, topic, aggregate_id, payload)
            VALUES (v_row.business_id, p_event, v_row.id,
                p_outbox_payload || jsonb_build_object(
                    'booking_id', v_row.id::text, 'version', v_row.version,
                    'status', v_row.status, 'starts_at', v_row.starts_at,
                    'session_id', p_session_id::text, 'seats', v_row.seats));
        END IF;
        RETURN NEXT v_row;
    END
$$
