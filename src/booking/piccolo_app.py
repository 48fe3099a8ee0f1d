"""The Piccolo app: where the migrations live. Piccolo is the migrations tool only.

No table classes: every query is SQL through asyncpg and every migration is raw SQL
(self-contained), so declared classes would only drift from the schema (see
docs/decisions.md, "No Piccolo table classes"). The schema's truth is the migrations;
never run ``piccolo migrations new --auto`` (with no tables it would plan to drop them).
"""

import os
from pathlib import Path

from piccolo.conf.apps import AppConfig


def migrations_dir() -> Path:
    configured = os.environ.get("BOOKING_MIGRATIONS_DIR")
    if configured:
        return Path(configured)
    # src/booking/piccolo_app.py -> repository root
    return Path(__file__).resolve().parents[2] / "piccolo_migrations"


APP_CONFIG = AppConfig(
    app_name="booking",
    migrations_folder_path=str(migrations_dir()),
    table_classes=[],
    migration_dependencies=[],
    commands=[],
)
