"""Webhook signing secrets: encrypted at rest, rotatable per endpoint with an overlap.

* **At rest.** ``webhook_endpoint.secret_sealed`` holds a Fernet token (AES-128-CBC +
  HMAC-SHA256, from ``cryptography``) of the ``whsec_...`` secret; the plaintext is never
  stored. The keys come from the environment: ``BOOKING_ENCRYPTION_KEYS`` (Fernet keys,
  comma-separated, newest first: the first encrypts, every one decrypts), or, when unset,
  one key derived from ``BOOKING_SECRET_KEY`` (and one from ``BOOKING_PREVIOUS_SECRET_KEY``
  for decryption during a rotation). Migration 2026-12-02T01:20 derives the same way.
* **Rotation.** ``rotate`` gives an endpoint a new secret and keeps the old one sealed in
  ``previous_secret_sealed`` until ``previous_secret_expires_at``; while both are live every
  delivery carries two signatures (``webhook-signature: v1,<new> v1,<old>``, which Standard
  Webhooks receivers accept when either matches), so a partner can switch at leisure.
* **Key rotation.** Put a new key first in ``BOOKING_ENCRYPTION_KEYS`` (keep the old ones
  after it), restart, then ``booking reseal-secrets`` (:func:`reseal_stored`) re-encrypts
  every stored secret under the new key; after that the old keys may be dropped.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from booking import db
from booking.settings import Settings, get_settings

DERIVATION_LABEL = b"booking webhook secrets v1\x00"


class SecretUnreadable(RuntimeError):
    """A sealed secret no configured key opens (the keys changed without a rotation)."""


def derived_key(secret_key: str) -> bytes:
    """The Fernet key derived from a BOOKING_SECRET_KEY (32 bytes of SHA-256, base64url)."""
    return base64.urlsafe_b64encode(hashlib.sha256(DERIVATION_LABEL + secret_key.encode()).digest())


def fernet_keys(settings: Settings) -> list[bytes]:
    """The keys, newest (encrypting) first."""
    if settings.encryption_keys.strip():
        return [key.strip().encode() for key in settings.encryption_keys.split(",") if key.strip()]
    return [derived_key(key) for key in settings.link_secrets]


def keyring(settings: Settings | None = None) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in fernet_keys(settings or get_settings())])


def seal(secret: str, settings: Settings | None = None) -> str:
    return keyring(settings).encrypt(secret.encode()).decode()


def unseal(sealed: str, settings: Settings | None = None) -> str:
    try:
        return keyring(settings).decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("no configured key decrypts this webhook secret") from exc


def signing_secrets(row: Any, now: datetime | None = None) -> list[str]:
    """The secrets a delivery is signed with: the current one, and the previous one while
    its overlap lasts."""
    secrets = [unseal(row["secret_sealed"])]
    expires = row["previous_secret_expires_at"]
    moment = now or datetime.now(UTC)
    if row["previous_secret_sealed"] and expires is not None and expires > moment:
        secrets.append(unseal(row["previous_secret_sealed"]))
    return secrets


def reseal(sealed: str, settings: Settings | None = None) -> str:
    """The same secret under the newest key (after adding a key to BOOKING_ENCRYPTION_KEYS)."""
    return keyring(settings).rotate(sealed.encode()).decode()


@dataclass(frozen=True)
class Resealed:
    resealed: int  # endpoints whose secrets moved to the newest key
    current: int  # already under the newest key: left alone
    unreadable: int  # no configured key opens them: left alone


def _is_current(sealed: str, newest: Fernet) -> bool:
    try:
        newest.decrypt(sealed.encode())
    except InvalidToken:
        return False
    return True


async def reseal_stored(settings: Settings | None = None) -> Resealed:
    """Re-encrypt every stored webhook secret (current and previous) under the newest key.

    One transaction, the rows locked against a concurrent rotate-secret. A secret already
    under the newest key is left as it is (so a second run reseals nothing); one that no
    configured key opens is counted and left as it is.
    """
    config = settings or get_settings()
    newest = Fernet(fernet_keys(config)[0])
    resealed = current = unreadable = 0
    async with db.connection() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT id, secret_sealed, previous_secret_sealed FROM webhook_endpoint "
            "ORDER BY id FOR UPDATE"
        )
        for row in rows:
            columns = {
                name: row[name]
                for name in ("secret_sealed", "previous_secret_sealed")
                if row[name] and not _is_current(row[name], newest)
            }
            if not columns:
                current += 1
                continue
            try:
                moved = {name: reseal(value, config) for name, value in columns.items()}
            except InvalidToken:
                unreadable += 1
                continue
            await conn.execute(
                "UPDATE webhook_endpoint SET "
                "secret_sealed = coalesce($2, secret_sealed), "
                "previous_secret_sealed = coalesce($3, previous_secret_sealed) WHERE id = $1",
                row["id"],
                moved.get("secret_sealed"),
                moved.get("previous_secret_sealed"),
            )
            resealed += 1
    return Resealed(resealed, current, unreadable)
