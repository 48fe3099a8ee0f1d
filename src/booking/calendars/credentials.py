"""CalDAV passwords at rest: sealed with the same keys as webhook signing secrets
(``BOOKING_ENCRYPTION_KEYS``, or derived from the secret key; see docs/security.md), so a
database dump holds no usable password. An empty password (no authentication) stays
empty."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from booking.webhooks.secrets import seal, unseal


def seal_password(password: str) -> str:
    return seal(password) if password else ""


def password_of(row: Mapping[str, Any]) -> str:
    """The plain password of a connection row that selected ``password_sealed``."""
    sealed: str = row["password_sealed"]
    return unseal(sealed) if sealed else ""
