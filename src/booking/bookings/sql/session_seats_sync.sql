-- Trigger on booking (AFTER INSERT, DELETE, UPDATE of status, seats or session): the
-- seats a booking takes in a group session are counted on the session's row, in the
-- same statement, whoever writes the booking (API, sweeper, raw SQL). A booking holds
-- its seats while its status holds time (holds included, until they expire). The
-- counter's CHECK (session_seats_within_capacity: seats_taken <= capacity) is what
-- refuses the 13th seat; the row lock this UPDATE takes serializes the writers of one
-- session. Moving between sessions releases and takes in one statement, locking the two
-- sessions in id order so two opposite moves cannot deadlock.
CREATE OR REPLACE FUNCTION session_seats_sync() RETURNS trigger
    LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan  -- planned once per connection (docs/decisions.md)
AS $$
    DECLARE
        v_old integer := 0;
        v_new integer := 0;
        v_business uuid;
        v_id uuid;
        v_delta integer;
    BEGIN
        IF TG_OP <> 'INSERT' AND OLD.session_id IS NOT NULL
           AND booking_holds_time(OLD.status) THEN
            v_old := OLD.seats;
        END IF;
        IF TG_OP <> 'DELETE' AND NEW.session_id IS NOT NULL
           AND booking_holds_time(NEW.status) THEN
            v_new := NEW.seats;
        END IF;
        IF TG_OP = 'UPDATE' AND OLD.session_id IS NOT DISTINCT FROM NEW.session_id THEN
            IF v_new = v_old THEN
                RETURN NULL;
            END IF;
            UPDATE session SET seats_taken = seats_taken + v_new - v_old
            WHERE business_id = NEW.business_id AND id = NEW.session_id
              AND (v_new < v_old OR status = 'scheduled');
            IF NOT FOUND THEN
                RAISE EXCEPTION 'session % is not open for booking', NEW.session_id
                    USING ERRCODE = 'BK002';
            END IF;
            RETURN NULL;
        END IF;
        FOR v_business, v_id, v_delta IN
            SELECT s.business_id, s.id, s.delta FROM (
                SELECT OLD.business_id AS business_id, OLD.session_id AS id, -v_old AS delta
                WHERE v_old > 0
                UNION ALL
                SELECT NEW.business_id, NEW.session_id, v_new WHERE v_new > 0) s
            ORDER BY s.id
        LOOP
            UPDATE session SET seats_taken = seats_taken + v_delta
            WHERE business_id = v_business AND id = v_id
              AND (v_delta < 0 OR status = 'scheduled');
            IF NOT FOUND THEN
                RAISE EXCEPTION 'session % is not open for booking', v_id
                    USING ERRCODE = 'BK002';
            END IF;
        END LOOP;
        RETURN NULL;
    END
$$
