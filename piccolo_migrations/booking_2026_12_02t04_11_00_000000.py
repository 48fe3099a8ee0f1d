"""The write path's PL/pgSQL functions plan their statements once per connection.

PL/pgSQL keeps a plan per statement, but by default re-plans with the call's values
("custom plans") for as long as it estimates that to be cheaper. booking_expire_holds_on's
UPDATE of booking (thirteen indexes by now) was re-planned on every call: ~0.3 ms of
planning around 4 us of execution, on every booking and every move (measured with
pg_stat_statements and auto_explain on the bench database; bench/RESULTS.md). Each hot
function now carries ``SET plan_cache_mode = force_generic_plan``: its statements are
keyed by primary keys, by the partial index of held rows, or by allocation_no_overlap with
every column bound, so the generic plan is the one a custom plan picks anyway.
The functions' current homes are in src/booking/bookings/sql/.
Self-contained: raw SQL only; backwards resets the setting.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T04:11:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "write-path functions use generic plans (plan_cache_mode)"

FUNCTIONS = (
    "booking_place",
    "booking_move",
    "booking_expire_holds_on",
    "booking_place_seats",
    "booking_allocations_sync",
    "session_seats_sync",
    "booking_segment_sync",
)

FORWARDS = [f"ALTER FUNCTION {name} SET plan_cache_mode = force_generic_plan" for name in FUNCTIONS]

BACKWARDS = [f"ALTER FUNCTION {name} RESET plan_cache_mode" for name in FUNCTIONS]


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
