-- Trigger on staff (AFTER INSERT, UPDATE OF name or active): every member of staff is a
-- resource of kind 'staff' with the same id, so allocations name staff and rooms alike.
CREATE OR REPLACE FUNCTION staff_resource_sync() RETURNS trigger
    LANGUAGE plpgsql
AS $$
    BEGIN
        INSERT INTO resource (business_id, id, kind, name, active)
        VALUES (NEW.business_id, NEW.id, 'staff', NEW.name, NEW.active)
        ON CONFLICT (business_id, id) DO UPDATE
            SET name = EXCLUDED.name, active = EXCLUDED.active;
        RETURN NULL;
    END
$$
