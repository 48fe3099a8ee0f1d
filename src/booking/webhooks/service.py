"""Partner webhook endpoints and deliveries.

* A partner registers endpoints (URL + event types); the signing secret is
  shown once.
* The outbox handler ``webhooks`` turns a committed event into one delivery
  row per matching endpoint (unique per outbox event and endpoint) and asks
  for a ``deliver_webhook`` job per delivery. An endpoint only gets events of
  bookings its partner may see: a business one of the partner's live keys
  covers, and a booking the partner made unless a key has bookings:read_all.
* An attempt leases the row, POSTs the signed body, and records the outcome.
  Failures retry on the schedule in ``BACKOFF`` (rows with a due time; the
  ``retry_due_webhooks`` cron enqueues them). A delivery that exhausts the
  schedule fails; if the endpoint has not succeeded for ``DISABLE_AFTER`` it is
  disabled.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, get_args
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from booking import db, outbound
from booking.access.principal import Principal
from booking.errors import InvalidInput, InvalidTransition, NotFound
from booking.outbox.dispatch import FollowUpJob, OutboxEvent, once_per_transaction
from booking.webhooks.schemas import EventType
from booking.webhooks.secrets import SecretUnreadable, seal, signing_secrets
from booking.webhooks.signing import new_secret, signed_headers
from booking.wire_time import localize, rfc3339, stored_json

# Every event a partner can subscribe to: the one list, in the API schema.
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
# Wait after the n-th failed attempt; 1 + len(BACKOFF) attempts over about 22 hours.
BACKOFF = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
)
MAX_ATTEMPTS = 1 + len(BACKOFF)
# An endpoint whose deliveries keep failing this long (and one exhausted its retries) is disabled.
DISABLE_AFTER = timedelta(hours=12)
# An attempt holds the row this long; a worker that dies mid-call is retried after it.
LEASE = timedelta(seconds=60)
DELIVER_JOB = "deliver_webhook"
log = logging.getLogger("booking.webhooks")

ENDPOINT_COLUMNS = """
    id, partner_id, url, description, event_types, created_at, failing_since, disabled_at,
    disabled_reason, previous_secret_expires_at
"""
# How long a rotated-out secret keeps signing, at most (the default is a day).
MAX_OVERLAP = timedelta(days=7)
DELIVERY_COLUMNS = """
    d.id, d.endpoint_id, d.outbox_event_id, d.message_id, d.event_type, d.payload, d.status,
    d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.last_error,
    d.delivered_at, d.created_at, d.generation
"""


def job_id(delivery_id: UUID, generation: int, attempts: int) -> str:
    """Deterministic per attempt: a rerun or a second enqueue of the same attempt is a no-op."""
    return f"webhook:{delivery_id}:{generation}:{attempts}"


def follow_up(row: Any) -> FollowUpJob:
    return FollowUpJob(
        function=DELIVER_JOB,
        job_id=job_id(row["id"], row["generation"], row["attempts"]),
        args=(str(row["id"]),),
    )


def next_delay(attempts: int) -> timedelta | None:
    """The wait before the next attempt after ``attempts`` failed ones; None when exhausted."""
    return BACKOFF[attempts - 1] if 1 <= attempts <= len(BACKOFF) else None


def _partner_of(principal: Principal) -> UUID:
    assert principal.partner_id is not None  # the guard admits partner keys only
    return principal.partner_id


# --- endpoints ----------------------------------------------------------------------------


async def _validate(url: str, event_types: list[str]) -> list[str]:
    try:
        await outbound.OutboundPolicy.from_settings().check(url)
    except outbound.Refused as exc:
        raise InvalidInput(f"url is not allowed: {exc.detail}", field="url") from exc
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise InvalidInput(f"Unknown event types: {unknown}.", field="event_types")
    if not event_types:
        raise InvalidInput("Name at least one event type.", field="event_types")
    return sorted(set(event_types))


async def create_endpoint(
    principal: Principal, url: str, event_types: list[str], description: str = ""
) -> tuple[dict[str, Any], str]:
    """The new endpoint and its signing secret (shown this once)."""
    events = await _validate(url, event_types)
    secret = new_secret()
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            f"""
            INSERT INTO webhook_endpoint (partner_id, url, description, event_types,
                                          secret_sealed, created_by)
            VALUES ($1, $2, $3, $4::text[], $5, $6) RETURNING {ENDPOINT_COLUMNS}
            """,
            _partner_of(principal),
            url,
            description,
            events,
            seal(secret),
            principal.actor_label,
        )
    assert row is not None
    return dict(row), secret


async def list_endpoints(principal: Principal) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        rows = await conn.fetch(
            f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoint WHERE partner_id = $1 "
            "AND deleted_at IS NULL ORDER BY created_at, id",
            _partner_of(principal),
        )
    return [dict(row) for row in rows]


async def get_endpoint(
    principal: Principal, endpoint_id: UUID, conn: asyncpg.Connection | None = None
) -> dict[str, Any]:
    """Another partner's endpoint looks exactly like a missing one."""
    query = (
        f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoint WHERE id = $1 AND partner_id = $2 "
        "AND deleted_at IS NULL"
    )
    if conn is not None:
        row = await conn.fetchrow(query, endpoint_id, _partner_of(principal))
    else:
        async with db.connection() as own:
            row = await own.fetchrow(query, endpoint_id, _partner_of(principal))
    if row is None:
        raise NotFound("No such webhook endpoint.")
    return dict(row)


async def delete_endpoint(principal: Principal, endpoint_id: UUID) -> None:
    """Stop deliveries; the row stays (soft delete) so the delivery log keeps its history."""
    async with db.transaction() as conn:
        await get_endpoint(principal, endpoint_id, conn)
        await conn.execute(
            "UPDATE webhook_endpoint SET deleted_at = now() WHERE id = $1", endpoint_id
        )
        await conn.execute(
            "UPDATE webhook_delivery SET status = 'failed', next_attempt_at = NULL, "
            "last_error = 'endpoint deleted' WHERE endpoint_id = $1 AND status = 'pending'",
            endpoint_id,
        )


async def rotate_secret(
    principal: Principal, endpoint_id: UUID, overlap: timedelta
) -> tuple[dict[str, Any], str]:
    """A new signing secret (shown this once); the current one keeps signing beside it for
    ``overlap`` (0: retired at once). A rotation during an overlap retires the oldest."""
    if not timedelta(0) <= overlap <= MAX_OVERLAP:
        raise InvalidInput("overlap_hours must be between 0 and 168.", field="overlap_hours")
    secret = new_secret()
    async with db.transaction() as conn:
        await get_endpoint(principal, endpoint_id, conn)
        row = await conn.fetchrow(
            f"""
            UPDATE webhook_endpoint SET previous_secret_sealed = secret_sealed,
                previous_secret_expires_at = now() + $2::interval, secret_sealed = $3
            WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}
            """,
            endpoint_id,
            overlap,
            seal(secret),
        )
    assert row is not None
    log.info("webhook endpoint %s: signing secret rotated (overlap %s)", endpoint_id, overlap)
    return dict(row), secret


async def enable_endpoint(principal: Principal, endpoint_id: UUID) -> dict[str, Any]:
    async with db.transaction() as conn:
        await get_endpoint(principal, endpoint_id, conn)
        row = await conn.fetchrow(
            f"""
            UPDATE webhook_endpoint SET disabled_at = NULL, disabled_reason = NULL,
                failing_since = NULL
            WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}
            """,
            endpoint_id,
        )
    assert row is not None
    return dict(row)


async def list_deliveries(
    principal: Principal, endpoint_id: UUID, *, status: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The endpoint's delivery log, newest first, each with its attempts."""
    await get_endpoint(principal, endpoint_id)
    async with db.connection() as conn:
        rows = await conn.fetch(
            f"""
            SELECT {DELIVERY_COLUMNS},
                   COALESCE((SELECT json_agg(json_build_object(
                        'attempted_at', a.attempted_at, 'status_code', a.status_code,
                        'error', a.error, 'duration_ms', a.duration_ms) ORDER BY a.id)
                     FROM webhook_attempt a WHERE a.delivery_id = d.id), '[]') AS attempt_log
            FROM webhook_delivery d
            WHERE d.endpoint_id = $1 AND ($2::text IS NULL OR d.status = $2)
            ORDER BY d.created_at DESC, d.id DESC LIMIT $3
            """,
            endpoint_id,
            status,
            limit,
        )
    return [_delivery_dict(row) for row in rows]


def _delivery_dict(row: Any) -> dict[str, Any]:
    item = dict(row)
    item["payload"] = json.loads(item["payload"])
    if "attempt_log" in item:
        item["attempt_log"] = json.loads(item["attempt_log"])
    return item


async def redeliver(principal: Principal, delivery_id: UUID) -> tuple[dict[str, Any], FollowUpJob]:
    """Send a delivery again now, with a fresh retry schedule; enqueue the job after this."""
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            """
            SELECT d.id, e.partner_id, e.disabled_at, e.deleted_at FROM webhook_delivery d
            JOIN webhook_endpoint e ON e.id = d.endpoint_id WHERE d.id = $1 FOR UPDATE OF d
            """,
            delivery_id,
        )
        if row is None or row["partner_id"] != _partner_of(principal) or row["deleted_at"]:
            raise NotFound("No such webhook delivery.")
        if row["disabled_at"] is not None:
            raise InvalidTransition(
                "The endpoint is disabled; enable it first "
                "(POST /v1/webhook-endpoints/{id}/enable)."
            )
        updated = await conn.fetchrow(
            f"""
            UPDATE webhook_delivery d SET status = 'pending', attempts = 0,
                generation = generation + 1, next_attempt_at = now(), last_error = NULL
            WHERE d.id = $1 RETURNING {DELIVERY_COLUMNS}
            """,
            delivery_id,
        )
    assert updated is not None
    return _delivery_dict(updated), follow_up(updated)


# --- the outbox handler -------------------------------------------------------------------


# An endpoint ``e`` that wants the event: live, subscribed to the topic, and its partner
# may see the booking (a key for the business; its own booking, or read_all).
_WANTS = """
    e.deleted_at IS NULL AND e.disabled_at IS NULL AND {topic} = ANY(e.event_types)
    AND EXISTS (
        SELECT 1 FROM api_key k
        WHERE k.partner_id = e.partner_id AND k.kind = 'partner' AND k.revoked_at IS NULL
          AND {business} = ANY(k.business_ids)
          AND (e.partner_id = {partner} OR 'bookings:read_all' = ANY(k.scopes)))
"""

# Does any endpoint want ``topic`` of some booking of the business (its partner's own
# bookings or, with bookings:read_all, all of them)?
_ANY_WANTS = (
    "SELECT EXISTS (SELECT 1 FROM webhook_endpoint e WHERE "
    + _WANTS.format(topic="$1", business="$2::uuid", partner="e.partner_id")
    + ")"
)


async def deliveries_for_event(conn: asyncpg.Connection, event: OutboxEvent) -> list[FollowUpJob]:
    """One delivery per endpoint that wants ``event`` and may see its booking."""
    if event.topic not in EVENT_TYPES:
        return []
    raw_booking = event.payload.get("booking_id") or event.aggregate_id
    try:
        booking_id = UUID(str(raw_booking))
    except ValueError:
        log.warning("outbox event %s has no booking id; no webhooks", event.id)
        return []
    # Most businesses have no partner webhooks: asked once per relay pass, business and
    # topic (a delivery made by an earlier run of this row stays pending for the
    # retry_due_webhooks cron should its endpoint go meanwhile).
    business_id = event.business_id
    if business_id is not None and not await once_per_transaction(
        ("webhooks.wanted", business_id, event.topic),
        lambda: conn.fetchval(_ANY_WANTS, event.topic, business_id),
    ):
        return []
    # The booking, and whether a delivery is wanted or already made (a rerun must return
    # the same jobs).
    wants = _WANTS.format(topic="$3", business="b.business_id", partner="b.partner_id")
    booking = await conn.fetchrow(
        f"""
        SELECT b.id, b.business_id, b.partner_id, b.reference_code, biz.time_zone,
               EXISTS (SELECT 1 FROM webhook_endpoint e WHERE {wants}) OR EXISTS (
                   SELECT 1 FROM webhook_delivery d
                   WHERE d.outbox_event_id = $2 AND d.status = 'pending') AS wanted
        FROM booking b JOIN business biz ON biz.id = b.business_id WHERE b.id = $1
        """,
        booking_id,
        event.id,
        event.topic,
    )
    if booking is None or not booking["wanted"]:
        return []
    # The body is signed as stored: every time in it is rendered in the business's zone now.
    tz = ZoneInfo(booking["time_zone"])
    data = localize(dict(event.payload), tz)
    data.update(
        booking_id=str(booking["id"]),
        business_id=str(booking["business_id"]),
        reference_code=booking["reference_code"],
        time_zone=tz.key,
    )
    data.pop("event", None)
    data.pop("request_id", None)  # our logs' correlation id, not the partner's business
    payload = {"type": event.topic, "timestamp": rfc3339(event.created_at, tz), "data": data}
    await conn.execute(
        f"""
        INSERT INTO webhook_delivery (endpoint_id, outbox_event_id, message_id, event_type,
                                      payload, next_attempt_at)
        SELECT e.id, $1, $2, $3, $4::jsonb, now() FROM webhook_endpoint e
        WHERE {_WANTS.format(topic="$3", business="$5::uuid", partner="$6::uuid")}
        ON CONFLICT ON CONSTRAINT webhook_delivery_once DO NOTHING
        """,
        event.id,
        f"msg_{event.id}",
        event.topic,
        stored_json(payload),
        booking["business_id"],
        booking["partner_id"],
    )
    rows = await conn.fetch(
        "SELECT id, generation, attempts FROM webhook_delivery "
        "WHERE outbox_event_id = $1 AND status = 'pending'",
        event.id,
    )
    return [follow_up(row) for row in rows]


# --- attempts -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttemptResult:
    outcome: str  # delivered | retry | failed | skipped
    status_code: int | None = None
    error: str | None = None


async def _lease(delivery_id: UUID) -> dict[str, Any] | None:
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            """
            SELECT d.id, d.message_id, d.payload, d.status, d.attempts, d.next_attempt_at,
                   e.id AS endpoint_id, e.url, e.secret_sealed, e.previous_secret_sealed,
                   e.previous_secret_expires_at, e.disabled_at, e.deleted_at
            FROM webhook_delivery d JOIN webhook_endpoint e ON e.id = d.endpoint_id
            WHERE d.id = $1 AND d.status = 'pending' AND d.next_attempt_at <= now()
            FOR UPDATE OF d SKIP LOCKED
            """,
            delivery_id,
        )
        if row is None:
            return None
        if row["disabled_at"] is not None or row["deleted_at"] is not None:
            await conn.execute(
                "UPDATE webhook_delivery SET status = 'failed', next_attempt_at = NULL, "
                "last_error = 'endpoint disabled' WHERE id = $1",
                delivery_id,
            )
            return None
        await conn.execute(
            "UPDATE webhook_delivery SET next_attempt_at = now() + $2 WHERE id = $1",
            delivery_id,
            LEASE,
        )
    return dict(row)


async def _post(url: str, body: str, headers: dict[str, str]) -> tuple[int | None, str | None]:
    """The outbound policy's POST: a status and a short error class, never the reply's body."""
    policy = outbound.OutboundPolicy.from_settings()
    result = await policy.post(url, body.encode(), headers)
    return result.status_code, result.error_class


async def attempt_delivery(delivery_id: UUID) -> AttemptResult:
    """One attempt, if the delivery is due and nobody else is on it. Safe to run twice."""
    leased = await _lease(delivery_id)
    if leased is None:
        return AttemptResult("skipped")
    body = leased["payload"]  # jsonb text exactly as stored: what the partner verifies
    started = time.monotonic()
    status_code: int | None = None
    error: str | None = "secret-unreadable"  # the keys changed without a rotation: not sent
    try:
        headers = signed_headers(signing_secrets(leased), leased["message_id"], body)
    except SecretUnreadable:
        log.error("webhook endpoint %s: no configured key opens its secret", leased["endpoint_id"])
    else:
        status_code, error = await _post(leased["url"], body, headers)
    duration_ms = int((time.monotonic() - started) * 1000)
    attempts = leased["attempts"] + 1
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO webhook_attempt (delivery_id, status_code, error, duration_ms) "
            "VALUES ($1, $2, $3, $4)",
            delivery_id,
            status_code,
            error,
            duration_ms,
        )
        if error is None:
            await conn.execute(
                """
                UPDATE webhook_delivery SET status = 'succeeded', attempts = $2,
                    last_attempt_at = now(), last_status_code = $3, last_error = NULL,
                    delivered_at = now(), next_attempt_at = NULL
                WHERE id = $1
                """,
                delivery_id,
                attempts,
                status_code,
            )
            await conn.execute(
                "UPDATE webhook_endpoint SET failing_since = NULL WHERE id = $1",
                leased["endpoint_id"],
            )
            return AttemptResult("delivered", status_code)
        delay = next_delay(attempts)
        await conn.execute(
            """
            UPDATE webhook_delivery SET attempts = $2, last_attempt_at = now(),
                last_status_code = $3, last_error = $4,
                status = CASE WHEN $5::interval IS NULL THEN 'failed' ELSE 'pending' END,
                next_attempt_at = now() + $5::interval
            WHERE id = $1
            """,
            delivery_id,
            attempts,
            status_code,
            error,
            delay,
        )
        await conn.execute(
            "UPDATE webhook_endpoint SET failing_since = COALESCE(failing_since, now()) "
            "WHERE id = $1",
            leased["endpoint_id"],
        )
        if delay is not None:
            return AttemptResult("retry", status_code, error)
        disabled = await conn.fetchval(
            """
            UPDATE webhook_endpoint SET disabled_at = now(),
                disabled_reason = 'deliveries failed for ' || $2 || ' hours'
            WHERE id = $1 AND disabled_at IS NULL AND failing_since <= now() - $3::interval
            RETURNING id
            """,
            leased["endpoint_id"],
            str(int(DISABLE_AFTER.total_seconds() // 3600)),
            DISABLE_AFTER,
        )
        if disabled is not None:
            log.warning("webhook endpoint %s disabled after persistent failure", disabled)
    return AttemptResult("failed", status_code, error)


async def due_deliveries(limit: int = 500) -> list[FollowUpJob]:
    """Jobs for deliveries whose next attempt is due (the cron's half of retrying)."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT id, generation, attempts FROM webhook_delivery "
            "WHERE status = 'pending' AND next_attempt_at <= now() "
            "ORDER BY next_attempt_at LIMIT $1",
            limit,
        )
    return [follow_up(row) for row in rows]
