-- Trigger on booking_segment (AFTER INSERT, DELETE, UPDATE of staff, resource or time):
-- each segment of a sequence holds its own member of staff (and room/chair/device) for
-- its own range under allocation_no_overlap (allocation kind 'segment', carrying the
-- booking's id so a status change of the booking flips them all, see
-- booking_allocations_sync). The booking row of a sequence holds nothing itself.
CREATE OR REPLACE FUNCTION booking_segment_sync() RETURNS trigger
    LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan  -- planned once per connection (docs/decisions.md)
AS $$
    DECLARE
        v_active boolean;
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            DELETE FROM allocation WHERE business_id = OLD.business_id AND segment_id = OLD.id;
        END IF;
        IF TG_OP = 'DELETE' THEN
            RETURN NULL;
        END IF;
        SELECT booking_holds_time(status) INTO v_active FROM booking
        WHERE business_id = NEW.business_id AND id = NEW.booking_id;
        INSERT INTO allocation (business_id, resource_id, kind, booking_id, segment_id, during,
            active)
        SELECT NEW.business_id, r, 'segment', NEW.booking_id, NEW.id,
               tstzrange(NEW.blocked_from, NEW.blocked_until, '[)'), v_active
        FROM unnest(ARRAY[NEW.staff_id, NEW.resource_id]) r WHERE r IS NOT NULL;
        RETURN NULL;
    END
$$
