-- A block (time off today) on a resource: the database then refuses any booking over it.
-- Bookings already there keep their row but lose their allocation on that resource
-- (``lost``, inactive: the lost-slot recovery marks them at risk and offers held
-- alternatives in the same transaction), so two active allocations never overlap.
-- Time another active block already covers gets an inactive (covered) block.
CREATE OR REPLACE FUNCTION allocation_block(
    p_business_id uuid, p_resource_id uuid, p_time_off_id uuid, p_during tstzrange
) RETURNS void
    LANGUAGE plpgsql
AS $$
    BEGIN
        UPDATE allocation SET active = false, lost = true
        WHERE business_id = p_business_id AND resource_id = p_resource_id AND active
          AND kind <> 'block' AND during && p_during;
        INSERT INTO allocation (business_id, resource_id, kind, time_off_id, during, active)
        VALUES (p_business_id, p_resource_id, 'block', p_time_off_id, p_during,
            NOT EXISTS (SELECT 1 FROM allocation
                        WHERE business_id = p_business_id AND resource_id = p_resource_id
                          AND active AND kind = 'block' AND during && p_during));
    END
$$
