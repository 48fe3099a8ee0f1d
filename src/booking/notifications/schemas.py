"""Response shapes for message history (never table rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from msgspec import Struct

from booking.wire_time import localize


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


def message_out(row: dict[str, Any], tz: ZoneInfo) -> MessageOut:
    fields = {key: value for key, value in row.items() if key != "business_id"}
    fields["to"] = fields.pop("to_phone")
    return localize(MessageOut(**fields), tz)
