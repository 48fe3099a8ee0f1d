"""Signed, expiring per-booking links: the customer's key to one booking only.

Format: ``bt.<booking uuid hex>.<expiry epoch>.<base64url HMAC-SHA256>``.
The token grants read, cancel and change on that booking and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

TOKEN_PREFIX = "bt."  # noqa: S105 - a marker, not a secret
DEFAULT_TOKEN_LIFETIME = timedelta(days=60)


def _mac(secret: str, booking_id: UUID, expires: int) -> str:
    message = f"booking:{booking_id.hex}:{expires}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_booking_token(secret: str, booking_id: UUID, expires_at: datetime | None = None) -> str:
    expiry = expires_at or datetime.now(UTC) + DEFAULT_TOKEN_LIFETIME
    expires = int(expiry.timestamp())
    return f"{TOKEN_PREFIX}{booking_id.hex}.{expires}.{_mac(secret, booking_id, expires)}"


class TokenError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "malformed" | "forged" | "expired"


def same_secret(sent: str, expected: str) -> bool:
    """Whether a secret someone sent (a link's MAC, a form's nonce) is ours, in constant
    time. Compared as UTF-8 bytes: ``hmac.compare_digest`` raises TypeError for a str
    with a non-ASCII character, which made a forged link written in anything but ASCII a
    500 instead of a refusal."""
    return hmac.compare_digest(
        sent.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def read_booking_token(
    secret: str | Sequence[str], token: str, now: datetime | None = None
) -> UUID:
    """The booking id the token grants, or :class:`TokenError`.

    ``secret`` may be several keys (current first, then the previous one during a rotation):
    a link signed by any of them opens."""
    if not token.startswith(TOKEN_PREFIX):
        raise TokenError("malformed")
    parts = token[len(TOKEN_PREFIX) :].split(".")
    if len(parts) != 3:
        raise TokenError("malformed")
    booking_hex, expires_raw, mac = parts
    try:
        booking_id = UUID(hex=booking_hex)
        expires = int(expires_raw)
    except ValueError as exc:
        raise TokenError("malformed") from exc
    secrets = (secret,) if isinstance(secret, str) else tuple(secret)
    if not any(same_secret(mac, _mac(key, booking_id, expires)) for key in secrets):
        raise TokenError("forged")
    moment = now or datetime.now(UTC)
    if moment.timestamp() >= expires:
        raise TokenError("expired")
    return booking_id
