"""Webhook signing secrets encrypted at rest, with a rotation overlap (issue 18, item 3).

``webhook_endpoint.secret`` (plain text) becomes ``secret_sealed``: a Fernet token of the
same secret, under the first key of ``BOOKING_ENCRYPTION_KEYS`` or, when that is unset,
the key derived from ``BOOKING_SECRET_KEY`` (the derivation of booking.webhooks.secrets,
restated here so the migration stays self-contained). Every existing secret is encrypted
in the same transaction, so partners keep verifying with the secret they have.
``previous_secret_sealed`` / ``previous_secret_expires_at`` hold a rotated-out secret
while it still signs.

Run it with the same BOOKING_SECRET_KEY / BOOKING_ENCRYPTION_KEYS as the API and worker.
Outside local development (BOOKING_ENV) it refuses the public default secret key, as the
API does. Backwards decrypts the secrets into the plain column again (the previous
secrets of an overlap are dropped).
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.fernet import Fernet, MultiFernet
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T01:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "webhook signing secrets encrypted at rest; previous secret for a rotation"

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
                "it encrypts the webhook signing secrets with it (docs/security.md)"
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
            "ALTER TABLE webhook_endpoint ADD COLUMN secret_sealed text, "
            "ADD COLUMN previous_secret_sealed text, "
            "ADD COLUMN previous_secret_expires_at timestamptz"
        )
        rows = await conn.fetch("SELECT id, secret FROM webhook_endpoint")
        if rows:
            keyring = _keyring()
            await conn.executemany(
                "UPDATE webhook_endpoint SET secret_sealed = $2 WHERE id = $1",
                [(row["id"], keyring.encrypt(row["secret"].encode()).decode()) for row in rows],
            )
        await conn.execute(
            "ALTER TABLE webhook_endpoint ALTER COLUMN secret_sealed SET NOT NULL, "
            "DROP COLUMN secret"
        )


async def _backwards() -> None:
    engine = engine_finder()
    assert engine is not None
    async with engine.transaction() as txn:
        conn = txn.connection
        await conn.execute("ALTER TABLE webhook_endpoint ADD COLUMN secret text")
        rows = await conn.fetch("SELECT id, secret_sealed FROM webhook_endpoint")
        if rows:
            keyring = _keyring()
            await conn.executemany(
                "UPDATE webhook_endpoint SET secret = $2 WHERE id = $1",
                [
                    (row["id"], keyring.decrypt(row["secret_sealed"].encode()).decode())
                    for row in rows
                ],
            )
        await conn.execute(
            "ALTER TABLE webhook_endpoint ALTER COLUMN secret SET NOT NULL, "
            "DROP COLUMN secret_sealed, DROP COLUMN previous_secret_sealed, "
            "DROP COLUMN previous_secret_expires_at"
        )


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="booking", description=DESCRIPTION)
    manager.add_raw(_forwards)
    manager.add_raw_backwards(_backwards)
    return manager
