-- Trigger on session (AFTER INSERT, AFTER UPDATE of staff, resource, time or status):
-- a group session holds its member of staff and its room (if any) for its whole
-- range under allocation_no_overlap, like a booking does; its seat bookings hold
-- none of their own (booking_allocations_sync skips them). A cancelled session
-- releases its time; a moved one is checked at its new place.
CREATE OR REPLACE FUNCTION session_allocations_sync() RETURNS trigger
    LANGUAGE plpgsql
AS $$
    DECLARE
        v_during tstzrange := tstzrange(NEW.blocked_from, NEW.blocked_until, '[)');
        v_active boolean := NEW.status = 'scheduled';
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            DELETE FROM allocation WHERE business_id = NEW.business_id AND session_id = NEW.id;
        END IF;
        INSERT INTO allocation (business_id, resource_id, kind, session_id, during, active)
        SELECT NEW.business_id, r, 'session', NEW.id, v_during, v_active
        FROM unnest(ARRAY[NEW.staff_id, NEW.resource_id]) r WHERE r IS NOT NULL;
        RETURN NULL;
    END
$$
