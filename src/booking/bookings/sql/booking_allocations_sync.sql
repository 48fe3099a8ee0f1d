-- Trigger on booking (AFTER INSERT, AFTER UPDATE of staff, resource, time or status):
-- a booking's allocations follow its row, in the same statement, whoever writes it.
-- kind 'staff' is the member of staff; kind 'resource' the room/chair/device if any.
-- Moving (staff, resource or time) replaces the allocations: the new place is checked
-- by allocation_no_overlap and the old one released by the same update. A status change only
-- flips ``active``; an allocation a block took (``lost``) stays inactive until moved.
-- A seat in a group session holds no allocation of its own: the session holds its
-- staff and room (session_allocations_sync), the seats are counted (session_seats_sync).
-- A sequence's row (is_sequence) holds none either: each segment holds its own
-- (booking_segment_sync); a status change of the row flips them all.
CREATE OR REPLACE FUNCTION booking_allocations_sync() RETURNS trigger
    LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan  -- planned once per connection (docs/decisions.md)
AS $$
    DECLARE
        v_during tstzrange := tstzrange(NEW.blocked_from, NEW.blocked_until, '[)');
        v_active boolean := booking_holds_time(NEW.status);
    BEGIN
        IF NEW.session_id IS NOT NULL THEN
            RETURN NULL;
        END IF;
        IF TG_OP = 'INSERT' THEN
            IF NEW.is_sequence THEN
                RETURN NULL;
            END IF;
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
        IF NEW.is_sequence OR (NEW.staff_id = OLD.staff_id
           AND NEW.resource_id IS NOT DISTINCT FROM OLD.resource_id
           AND NEW.blocked_from = OLD.blocked_from AND NEW.blocked_until = OLD.blocked_until) THEN
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
