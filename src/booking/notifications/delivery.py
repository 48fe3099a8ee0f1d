"""Where a sent SMS ended up: Twilio's status callbacks, and the partner events
(``message.delivered`` / ``message.failed``) a message's final status announces.

A status callback can come twice or out of order: a late status never moves a
message backwards, and only the move from a non-final status to a final one
writes the outbox row, so each message announces its outcome once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import asyncpg

from booking import db
from booking.telemetry.context import traced_payload

# Twilio's message statuses, in the order they can happen; a late callback never
# moves a message backwards.
_PROVIDER_RANK = {
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
}
_OUR_STATUS = {"delivered": "delivered", "read": "delivered", "undelivered": "undelivered"}


async def record_delivery_status(sid: str, status: str, error_code: int | None) -> bool:
    """Apply a status callback; False when no message has that sid (nothing changes)."""
    provider_status = status.strip().lower()
    rank = _PROVIDER_RANK.get(provider_status)
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            "SELECT id, status, provider_status FROM message WHERE provider_sid = $1 FOR UPDATE",
            sid,
        )
        if row is None:
            return False
        if rank is None or rank < _PROVIDER_RANK.get(row["provider_status"] or "", 0):
            return True  # unknown or out-of-order status: keep what we know
        ours = _OUR_STATUS.get(provider_status, "failed" if provider_status == "failed" else "sent")
        updated = await conn.fetchrow(
            f"""
            UPDATE message SET provider_status = $2, status = $3,
                error_code = COALESCE($4, error_code), updated_at = now(),
                delivered_at = CASE WHEN $3 = 'delivered' THEN now() ELSE delivered_at END
            WHERE id = $1 RETURNING {MESSAGE_EVENT_COLUMNS}
            """,
            row["id"],
            provider_status,
            ours,
            error_code,
        )
        assert updated is not None
        if row["status"] not in FINAL_STATUSES:
            await emit_final_status(conn, updated)
    return True


# A message's final statuses and the partner event each one announces (once per message:
# only the move from a non-final status emits, so repeated or late callbacks add nothing).
FINAL_STATUSES = {
    "delivered": "message.delivered",
    "undelivered": "message.failed",
    "failed": "message.failed",
}
MESSAGE_EVENT_COLUMNS = """
    id, business_id, booking_id, customer_id, template, status, provider_status, error_code,
    error_message, updated_at
"""


async def emit_final_status(conn: asyncpg.Connection, message: Mapping[str, Any]) -> None:
    """The outbox row announcing that a message to a booking's customer reached a final
    status (partners subscribe to ``message.delivered`` / ``message.failed``), in the
    caller's transaction. Messages to the business itself (on-duty alerts) announce nothing."""
    topic = FINAL_STATUSES.get(message["status"])
    if topic is None or message["booking_id"] is None or message["customer_id"] is None:
        return
    payload = {
        "event": topic,
        "booking_id": str(message["booking_id"]),
        "message_id": str(message["id"]),
        "template": message["template"],
        "status": message["status"],
        "provider_status": message["provider_status"],
        "error_code": message["error_code"],
        "error_message": message["error_message"],
        "at": message["updated_at"].isoformat(),
    }
    await conn.execute(
        """
        INSERT INTO outbox (business_id, topic, aggregate_id, payload)
        SELECT b.business_id, $2, b.id, $4::jsonb FROM booking b
        WHERE b.id = $1 AND b.customer_id = $3
        """,
        message["booking_id"],
        topic,
        message["customer_id"],
        json.dumps(traced_payload(payload)),
    )
