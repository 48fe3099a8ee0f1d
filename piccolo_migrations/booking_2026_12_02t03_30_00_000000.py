"""Marketplaces (issue 16): which businesses are listed on the Actions Center, for which
partner, and which booking versions the partner was already told about.

* ``marketplace_listing (business_id, partner_id)``: the business's opt-in (feeds and
  the v3 booking server answer only for listed businesses), the feed horizon in days,
  an optional notification base URL (else ``BOOKING_MARKETPLACE_NOTIFY_URL``) and
  ``feed_changed_at``, set by the outbox handler when something the feeds show changed.
* ``marketplace_notified (business_id, booking_id)``: the last booking version sent in
  a booking notification, so a rerun never sends one twice.

Self-contained: raw SQL only. Backwards drops both tables.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T03:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "marketplace_listing and marketplace_notified (Actions Center)"

FORWARDS = [
    """
    CREATE TABLE marketplace_listing (
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        partner_id uuid NOT NULL REFERENCES partner (id) ON DELETE CASCADE,
        feed_horizon_days integer NOT NULL DEFAULT 30 CHECK (feed_horizon_days BETWEEN 1 AND 365),
        notification_base_url text,
        feed_changed_at timestamptz NOT NULL DEFAULT now(),
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (business_id, partner_id)
    )
    """,
    """
    CREATE TABLE marketplace_notified (
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        booking_id uuid NOT NULL,
        version integer NOT NULL,
        notified_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (business_id, booking_id)
    )
    """,
]
BACKWARDS = [
    "DROP TABLE marketplace_notified",
    "DROP TABLE marketplace_listing",
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
