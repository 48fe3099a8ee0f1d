-- One writer at a time per resource and half hour: booking_place and booking_move take
-- it for the staff member and the resource of a combination (and a move for the place
-- it leaves too) just before writing its allocations, inside the attempt's
-- subtransaction (so a refused attempt releases it at once). Two concurrent writes of
-- conflicting allocations otherwise each wait for the other inside
-- allocation_no_overlap's check - a deadlock PostgreSQL breaks only after
-- deadlock_timeout (1 s): 370 of them in one 500-client race on five cabins. The
-- constraint stays the arbiter (raw SQL writers need no lock); this only orders the
-- writers.
-- Keys: two-int advisory locks of class 1 (the one-bigint form used elsewhere is a
-- separate key space), one per resource and 30-minute bucket of Unix time that its
-- range touches: two ranges that overlap share an instant, so their writers share a key
-- and queue; writers of one resource at other times no longer wait for each other's
-- commit (2026-12-02T04:12 took one key per resource: 16 writers on 4 staff made 4
-- queues). Taken in key order, all at once, so two writers never hold them crosswise.
-- p_resources[i] is held over p_during[i]; NULL resources are skipped.
CREATE OR REPLACE FUNCTION allocation_write_lock(p_resources uuid[], p_during tstzrange[])
    RETURNS void
    LANGUAGE plpgsql
AS $$
    DECLARE
        v_key integer;
    BEGIN
        FOR v_key IN
            SELECT DISTINCT hashtext(r.id::text || ':' || b.n)
            FROM unnest(p_resources, p_during) AS r(id, during),
                 generate_series(
                     floor(extract(epoch FROM lower(r.during)) / 1800)::bigint,
                     ceil(extract(epoch FROM upper(r.during)) / 1800)::bigint - 1) AS b(n)
            WHERE r.id IS NOT NULL
            ORDER BY 1
        LOOP
            PERFORM pg_advisory_xact_lock(1, v_key);
        END LOOP;
    END
$$
