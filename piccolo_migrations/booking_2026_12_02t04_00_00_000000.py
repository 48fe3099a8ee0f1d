"""CalDAV passwords encrypted at rest like webhook signing secrets (issues 13 and 18).

``calendar_connection.password`` (plain text) becomes ``password_sealed``: a Fernet token
of the same password under the first key of ``BOOKING_ENCRYPTION_KEYS`` or, when that is
unset, the key derived from ``BOOKING_SECRET_KEY`` (booking.webhooks.secrets' derivation,
restated so the migration stays self-contained); an empty password (a calendar without
authentication) stays empty. Existing passwords are encrypted in the same transaction, so
syncs keep working. Run it with the API's BOOKING_SECRET_KEY / BOOKING_ENCRYPTION_KEYS;
outside local development it refuses the public default secret key. Backwards decrypts
them into the plain column again.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.fernet import Fernet, MultiFernet
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T04:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "calendar_connection.password_sealed: CalDAV passwords encrypted at rest"

DEFAULT_SECRET_KEY = "local-dev-secret-change-me"  # noqa: S105 - the public local default
LOCAL_ENVIRONMENTS = {"development", "test"}
DERIVATION_LABEL = b"booking webhook secrets v1\x00"


def _keyring() -> MultiFernet:
    configured = os.environ.get("BOOKING_ENCRYPTION_KEYS", "").strip()
    if configured:
        keys = [key.strip().encode() for key in configured.split(",") if key.strip()]
    else:
        secret = os.environ.get("BOOKING_SECRET_KEY") or DEFAULT_SECRET_KEY
        environment = (os.environ.get("BOOKING_ENV") or "production").strip().lower()
        if secret == DEFAULT_SECRET_KEY and environment not in LOCAL_ENVIRONMENTS:
            raise RuntimeError(
                "set BOOKING_SECRET_KEY (or BOOKING_ENCRYPTION_KEYS) before this migration: "
                "it encrypts the CalDAV passwords with it (docs/security.md)"
            )
        previous = os.environ.get("BOOKING_PREVIOUS_SECRET_KEY", "")
        keys = [
            base64.urlsafe_b64encode(hashlib.sha256(DERIVATION_LABEL + key.encode()).digest())
            for key in (secret, previous)
            if key
        ]
    return MultiFernet([Fernet(key) for key in keys])


async def _forwards() -> None:
    engine = engine_finder()
    assert engine is not None
    async with engine.transaction() as txn:
        conn = txn.connection
        await conn.execute(
            "ALTER TABLE calendar_connection ADD COLUMN password_sealed text NOT NULL DEFAULT ''"
        )
        rows = await conn.fetch("SELECT id, password FROM calendar_connection WHERE password <> ''")
        if rows:
            keyring = _keyring()
            await conn.executemany(
                "UPDATE calendar_connection SET password_sealed = $2 WHERE id = $1",
                [(row["id"], keyring.encrypt(row["password"].encode()).decode()) for row in rows],
            )
        await conn.execute("ALTER TABLE calendar_connection DROP COLUMN password")


async def _backwards() -> None:
    engine = engine_finder()
    assert engine is not None
    async with engine.transaction() as txn:
        conn = txn.connection
        await conn.execute(
            "ALTER TABLE calendar_connection ADD COLUMN password text NOT NULL DEFAULT ''"
        )
        rows = await conn.fetch(
            "SELECT id, password_sealed FROM calendar_connection WHERE password_sealed <> ''"
        )
        if rows:
            keyring = _keyring()
            await conn.executemany(
                "UPDATE calendar_connection SET password = $2 WHERE id = $1",
                [
                    (row["id"], keyring.decrypt(row["password_sealed"].encode()).decode())
                    for row in rows
                ],
            )
        await conn.execute("ALTER TABLE calendar_connection DROP COLUMN password_sealed")


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="booking", description=DESCRIPTION)
    manager.add_raw(_forwards)
    manager.add_raw_backwards(_backwards)
    return manager
