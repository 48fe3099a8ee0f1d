"""Apply (or roll back) the Piccolo migrations for the booking app."""

from __future__ import annotations

import os


def _configure() -> None:
    os.environ.setdefault("PICCOLO_CONF", "booking.piccolo_conf")


async def migrate_forwards() -> None:
    _configure()
    from piccolo.apps.migrations.commands.forwards import run_forwards

    result = await run_forwards(app_name="booking", migration_id="all")
    if not result.success:
        raise RuntimeError(f"migrations failed: {result.message}")


async def migrate_backwards(migration_id: str = "1") -> None:
    """Roll back to before ``migration_id`` ("1" = the last one, "all" = everything)."""
    _configure()
    from piccolo.apps.migrations.commands.backwards import run_backwards

    result = await run_backwards(app_name="booking", migration_id=migration_id, auto_agree=True)
    if not result.success:
        raise RuntimeError(f"rolling back failed: {result.message}")
