-- One writer at a time per resource: booking_place and booking_move take it for the
-- staff member and the resource of a combination just before writing its allocations,
-- inside the attempt's subtransaction (so a refused attempt releases it at once). Two
-- concurrent writes of conflicting allocations otherwise each wait for the other inside
-- allocation_no_overlap's check - a deadlock PostgreSQL breaks only after
-- deadlock_timeout (1 s): 370 of them in one 500-client race on five cabins. The
-- constraint stays the arbiter (raw SQL writers need no lock); this only orders the
-- writers. Keys: two-int advisory locks of class 1 (the one-bigint form used elsewhere is
-- a separate key space), taken in key order so two writers never hold them crosswise.
CREATE OR REPLACE FUNCTION allocation_write_lock(p_first uuid, p_second uuid) RETURNS void
    LANGUAGE plpgsql
AS $$
    DECLARE
        v_first integer := hashtext(p_first::text);
        v_second integer := hashtext(p_second::text);
    BEGIN
        IF p_second IS NULL OR v_first = v_second THEN
            PERFORM pg_advisory_xact_lock(1, v_first);
        ELSE
            PERFORM pg_advisory_xact_lock(1, least(v_first, v_second));
            PERFORM pg_advisory_xact_lock(1, greatest(v_first, v_second));
        END IF;
    END
$$
