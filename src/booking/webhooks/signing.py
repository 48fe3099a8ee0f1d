"""Standard Webhooks signing: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - a marker, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(
    secrets: str | list[str], message_id: str, body: str, at: datetime | None = None
) -> dict[str, str]:
    """Standard Webhooks headers; several secrets (a rotation's overlap) give several
    space-separated signatures, any one of which a receiver accepts."""
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    keys = [secrets] if isinstance(secrets, str) else secrets
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": " ".join(Webhook(key).sign(message_id, moment, body) for key in keys),
        "content-type": "application/json",
        "user-agent": "booking-webhooks/1",
    }
