"""booking_expire_holds_on in PL/pgSQL: its plan is kept for the session.

Migration 2026-11-27T01:00 wrote it in SQL. PostgreSQL does not inline a SQL
function with side effects and plans its body again on every call: ~160 µs of
PostgreSQL CPU per booking and per change (measured 203 µs vs 60-80 µs per call
for the same statement in PL/pgSQL, bench/RESULTS.md 2026-11-27). Same statement,
same effect; backwards restores the SQL version.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T02:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "booking_expire_holds_on in PL/pgSQL (plan cached per session)"

_SIGNATURE = """
    booking_expire_holds_on(
        p_staff_ids uuid[], p_blocked_from timestamptz, p_blocked_until timestamptz
    ) RETURNS void
"""
_RELEASE = """
        WITH released AS (
            UPDATE booking SET status = 'expired', version = version + 1, updated_at = now(),
                   hold_token_hash = NULL
            WHERE staff_id = ANY(p_staff_ids) AND status = 'held' AND hold_expires_at <= now()
              AND tstzrange(blocked_from, blocked_until, '[)')
                  && tstzrange(p_blocked_from, p_blocked_until, '[)')
            RETURNING id, business_id, status
        )
        INSERT INTO booking_history (booking_id, business_id, event, from_status, to_status,
            actor_type, actor_id, channel, changes, reason, policy_override)
        SELECT id, business_id, 'hold.expired', 'held', status, 'system', 'hold-release',
               'system', '{}'::jsonb, NULL, false
        FROM released
"""

FORWARDS = [
    f"""
    CREATE OR REPLACE FUNCTION {_SIGNATURE} LANGUAGE plpgsql AS $$
    BEGIN
        {_RELEASE};
    END
    $$
    """,
]

BACKWARDS = [
    f"CREATE OR REPLACE FUNCTION {_SIGNATURE} LANGUAGE sql AS $$ {_RELEASE} $$",
]


async def _run_all(statements: list[str]) -> None:
    engine = engine_finder()
    assert engine is not None
    async with engine.transaction() as txn:
        for statement in statements:
            await txn.connection.execute(statement)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="booking", description=DESCRIPTION)

    async def run() -> None:
        await _run_all(FORWARDS)

    async def run_backwards() -> None:
        await _run_all(BACKWARDS)

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
