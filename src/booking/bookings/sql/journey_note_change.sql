-- Trigger on the rows the journey metrics count (booking; booking_history, message,
-- reschedule_offer and feedback of a booking): notes the booking in journey_change, so
-- the next metrics read rebuilds the per-day summaries (journey_day) of the days the
-- booking was on and is on (booking.journey.summary). A booking's day now is found
-- through its id; the day it left (a move, a delete) is noted by its old start.
-- Append-only on purpose, without a unique key: a writer never waits on another writer
-- or on a metrics read; the read deletes the notes it folds in.
CREATE OR REPLACE FUNCTION journey_note_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
    BEGIN
        IF TG_TABLE_NAME = 'booking' THEN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO journey_change (business_id, booking_id)
                VALUES (NEW.business_id, NEW.id);
            ELSE
                INSERT INTO journey_change (business_id, booking_id, starts_at)
                VALUES (OLD.business_id, OLD.id, OLD.starts_at);
            END IF;
            RETURN NULL;
        END IF;
        IF TG_OP <> 'INSERT' THEN
            IF OLD.booking_id IS NOT NULL THEN
                INSERT INTO journey_change (business_id, booking_id)
                VALUES (OLD.business_id, OLD.booking_id);
            END IF;
            IF TG_OP = 'DELETE' THEN
                RETURN NULL;
            END IF;
            IF NEW.booking_id IS NOT DISTINCT FROM OLD.booking_id THEN
                RETURN NULL;
            END IF;
        END IF;
        IF NEW.booking_id IS NOT NULL THEN
            INSERT INTO journey_change (business_id, booking_id)
            VALUES (NEW.business_id, NEW.booking_id);
        END IF;
        RETURN NULL;
    END
$$
