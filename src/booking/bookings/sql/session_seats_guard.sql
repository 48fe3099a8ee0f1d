-- Trigger on session (BEFORE INSERT OR UPDATE): seats_taken is the count of its
-- bookings' seats and only session_seats_sync writes it. A new session starts empty;
-- a direct UPDATE of the counter (not from inside the booking trigger) is refused, so
-- raw SQL cannot open seats that bookings hold.
CREATE OR REPLACE FUNCTION session_seats_guard() RETURNS trigger
    LANGUAGE plpgsql
AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            NEW.seats_taken := 0;
        ELSIF NEW.seats_taken <> OLD.seats_taken AND pg_trigger_depth() < 2 THEN
            RAISE EXCEPTION 'session.seats_taken is kept by its bookings'
                USING ERRCODE = 'BK003';
        END IF;
        RETURN NEW;
    END
$$
