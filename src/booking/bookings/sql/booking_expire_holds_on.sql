-- The lazy half of hold release: holds past their expiry that sit on any of these
-- resources in the range are expired (with their history) before a write there, so
-- a stale hold never makes a free time look taken. The sweeper does the rest.
CREATE OR REPLACE FUNCTION booking_expire_holds_on(
    p_business_id uuid, p_resource_ids uuid[], p_during tstzrange
) RETURNS void
    LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan  -- planned once per connection (docs/decisions.md)
AS $$
    BEGIN
        WITH released AS (
            UPDATE booking SET status = 'expired', version = version + 1, updated_at = now(),
                   hold_token_hash = NULL
            WHERE business_id = p_business_id AND status = 'held' AND hold_expires_at <= now()
              AND id IN (SELECT booking_id FROM allocation
                         WHERE business_id = p_business_id AND active
                           AND resource_id = ANY(p_resource_ids) AND during && p_during)
            RETURNING id, business_id, status
        )
        INSERT INTO booking_history (booking_id, business_id, event, from_status, to_status,
            actor_type, actor_id, channel, changes, reason, policy_override)
        SELECT id, business_id, 'hold.expired', 'held', status, 'system', 'hold-release',
               'system', '{}'::jsonb, NULL, false
        FROM released;
    END
$$
