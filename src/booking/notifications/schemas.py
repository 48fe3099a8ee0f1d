"""Response shapes for message history (never table rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from msgspec import Struct


class MessageOut(Struct):
    id: UUID
    template: str
    locale: str
    to: str
    body: str  # the booking link's token is redacted
    status: str  # pending, sending, sent, delivered, undelivered, failed, skipped
    attempts: int
    created_at: datetime
    provider: str | None = None
    provider_sid: str | None = None
    provider_status: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None


def message_out(row: dict[str, Any]) -> MessageOut:
    fields = dict(row)
    fields["to"] = fields.pop("to_phone")
    return MessageOut(**fields)
