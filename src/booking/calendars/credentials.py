"""CalDAV passwords at rest: sealed with the same keys as webhook signing secrets
(``BOOKING_ENCRYPTION_KEYS``, or derived from the secret key; see docs/security.md), so a
database dump holds no usable password. An empty password (no authentication) stays
empty."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from booking import db
from booking.settings import Settings, get_settings
from booking.webhooks.secrets import Resealed, fernet_keys, reseal, seal, unseal


def seal_password(password: str) -> str:
    return seal(password) if password else ""


def password_of(row: Mapping[str, Any]) -> str:
    """The plain password of a connection row that selected ``password_sealed``."""
    sealed: str = row["password_sealed"]
    return unseal(sealed) if sealed else ""


async def reseal_passwords(settings: Settings | None = None) -> Resealed:
    """Every stored CalDAV password under the newest key (``booking reseal-secrets``, after
    a key was put first in BOOKING_ENCRYPTION_KEYS); one transaction, like the webhook
    secrets: those already under the newest key and those no key opens are left alone."""
    config = settings or get_settings()
    newest = Fernet(fernet_keys(config)[0])
    resealed = current = unreadable = 0
    async with db.connection() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT business_id, id, password_sealed FROM calendar_connection "
            "WHERE password_sealed <> '' ORDER BY business_id, id FOR UPDATE"
        )
        for row in rows:
            try:
                newest.decrypt(row["password_sealed"].encode())
                current += 1
                continue
            except InvalidToken:
                pass
            try:
                moved = reseal(row["password_sealed"], config)
            except InvalidToken:
                unreadable += 1
                continue
            await conn.execute(
                "UPDATE calendar_connection SET password_sealed = $3 "
                "WHERE business_id = $1 AND id = $2",
                row["business_id"],
                row["id"],
                moved,
            )
            resealed += 1
    return Resealed(resealed, current, unreadable)
