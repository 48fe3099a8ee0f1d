"""The Piccolo app: where migrations live and which tables belong to it."""

import os
from pathlib import Path

from piccolo.conf.apps import AppConfig

from booking.tables import ALL_TABLES


def migrations_dir() -> Path:
    configured = os.environ.get("BOOKING_MIGRATIONS_DIR")
    if configured:
        return Path(configured)
    # src/booking/piccolo_app.py -> repository root
    return Path(__file__).resolve().parents[2] / "piccolo_migrations"


APP_CONFIG = AppConfig(
    app_name="booking",
    migrations_folder_path=str(migrations_dir()),
    table_classes=list(ALL_TABLES),
    migration_dependencies=[],
    commands=[],
)
