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
