"""Outbox rows for the guarantee's own events (offer.*, promise.*), written in the caller's
transaction; the relay and the registered handlers (SMS, partner webhooks) do the rest."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from booking.telemetry.context import traced_payload
from booking.wire_time import stored_json

OFFER_CREATED = "offer.created"
OFFER_ACCEPTED = "offer.accepted"
OFFER_EXPIRED = "offer.expired"
PROMISE_AT_RISK = "promise.at_risk"
PROMISE_BROKEN = "promise.broken"
TOPICS = (OFFER_CREATED, OFFER_ACCEPTED, OFFER_EXPIRED, PROMISE_AT_RISK, PROMISE_BROKEN)


async def emit(
    conn: asyncpg.Connection,
    business_id: UUID,
    topic: str,
    aggregate_id: UUID | None,
    payload: dict[str, Any],
) -> None:
    body = traced_payload({"event": topic, **payload})
    await conn.execute(
        "INSERT INTO outbox (business_id, topic, aggregate_id, payload) "
        "VALUES ($1, $2, $3, $4::jsonb)",
        business_id,
        topic,
        aggregate_id,
        stored_json(body),
    )
