"""SMS rules: queue a message inside the caller's transaction, send it once, track it.

A message is a row first (``queue_sms``, unique ``dedupe_key``) and an arq job
second (``send_sms`` with job id ``sms:<message id>``), so running anything twice
never creates or sends a second message.

Sending is two short transactions around the provider call:

1. claim: ``pending`` -> ``sending`` with ``claimed_until = now() + lease``;
2. record: ``sent`` with the provider's sid, or back to ``pending`` with a
   backoff (retryable error), or ``failed`` (permanent error), all with the
   error code on the row.

The crash window is between the provider accepting and step 2. A rerun that
finds a live claim waits for it to lapse; after the lease it sends again. That
is at-least-once: a worker killed in the middle of a Twilio call can cause one
duplicate, never a lost message (see docs/notifications.md).
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from booking import db
from booking.access.principal import Principal
from booking.access.tokens import make_booking_token
from booking.bookings.queries import get_booking
from booking.notifications.delivery import FINAL_STATUSES, MESSAGE_EVENT_COLUMNS, emit_final_status
from booking.notifications.reminders import sync_reminders
from booking.notifications.sms import SmsSender, SmsSendError
from booking.notifications.templates import format_when, render
from booking.outbox.dispatch import FollowUpJob, OutboxEvent
from booking.settings import Settings, get_settings
from booking.telemetry import metrics

log = logging.getLogger("booking.notifications")
events = structlog.get_logger("booking.notifications")

SEND_JOB = "send_sms"
STATUS_CALLBACK_PATH = "/v1/twilio/status"
MAX_ATTEMPTS = 8
DEFAULT_BACKOFF_BASE = 5.0  # seconds; doubled each attempt
MAX_BACKOFF = 900.0
DEFAULT_LEASE = timedelta(seconds=90)  # > job timeout: a live attempt is never overtaken
OPTED_OUT = "customer opted out of SMS (STOP)"

_configured: Settings | None = None


def configure(settings: Settings) -> None:
    """The settings the worker runs with (links, status callback URL)."""
    global _configured  # one per process, set at worker start-up
    _configured = settings


def current_settings() -> Settings:
    return _configured or get_settings()


def send_job(message_id: UUID) -> FollowUpJob:
    return FollowUpJob(function=SEND_JOB, job_id=f"sms:{message_id}", args=(str(message_id),))


# A stored body holds the booking link without its token (issue 18): the link's id is the
# message's booking_id, and the token is minted when the SMS is sent (render_link).
LINK_TOKEN_MARK = "bt.[link]"  # noqa: S105 - a placeholder, not a secret


def manage_link(settings: Settings, booking_id: UUID) -> str:
    token = make_booking_token(settings.secret_key, booking_id)
    return f"{settings.public_base_url}/b/{token}"


def stored_link(settings: Settings) -> str:
    return f"{settings.public_base_url}/b/{LINK_TOKEN_MARK}"


def render_link(body: str, booking_id: UUID | None, settings: Settings) -> str:
    """The text to send: the stored body with its booking link's token minted now."""
    if booking_id is None or LINK_TOKEN_MARK not in body:
        return body
    return body.replace(LINK_TOKEN_MARK, make_booking_token(settings.secret_key, booking_id))


def status_callback_url(settings: Settings) -> str:
    return settings.public_base_url + STATUS_CALLBACK_PATH


# --------------------------------------------------------------------------- queueing

_BOOKING_FOR_SMS = """
    SELECT b.id, b.business_id, b.status, b.starts_at, b.reference_code, b.customer_id,
           c.name AS customer_name, c.phone, c.locale AS customer_locale, c.sms_consent,
           biz.name AS business_name, biz.time_zone, biz.locale AS business_locale,
           biz.confirm_within_minutes, s.name AS service_name, st.name AS staff_name
    FROM booking b
    JOIN business biz ON biz.id = b.business_id
    JOIN service s ON s.id = b.service_id
    JOIN staff st ON st.id = b.staff_id
    LEFT JOIN customer c ON c.id = b.customer_id
    WHERE b.id = $1
"""


def booking_context(
    row: Mapping[str, Any], settings: Settings, locale: str, starts_at: datetime | None = None
) -> dict[str, Any]:
    """What every booking template may use."""
    name = (row["customer_name"] or "").split(" ")[0]
    return {
        "name": name,
        "business": row["business_name"],
        "service": row["service_name"],
        "staff": row["staff_name"],
        "when": format_when(starts_at or row["starts_at"], row["time_zone"], locale),
        "reference": row["reference_code"],
        "link": stored_link(settings),
    }


async def queue_sms(
    conn: asyncpg.Connection,
    *,
    template: str,
    dedupe_key: str,
    booking_id: UUID | None = None,
    context: Mapping[str, Any] | None = None,
    to: str | None = None,
    locale: str | None = None,
    business_id: UUID | None = None,
    outbox_id: int | None = None,
    settings: Settings | None = None,
    booking_row: Mapping[str, Any] | None = None,
) -> FollowUpJob | None:
    """Queue one SMS inside the caller's transaction; the job to enqueue after commit.

    * With ``booking_id`` the message goes to the booking's customer in their
      locale, and the booking's context (name, business, service, staff, when,
      reference, link) is available to the template; ``context`` adds to or
      overrides it. With ``to`` (E.164) it goes to that number instead, e.g.
      the business's on-duty phone.
    * ``dedupe_key`` is unique among the business's messages: a second call with the same
      key changes nothing and returns the same job while the message is unsent.
    * A customer who replied STOP gets no SMS: the message is recorded as
      ``skipped`` and None is returned.
    * Enqueueing the returned job is an optimisation: the ``requeue_messages``
      cron sends any pending message whose job went missing.
    * ``booking_row``: the booking as the caller already read it (``_BOOKING_FOR_SMS``),
      so it is not read twice.
    """
    config = settings or current_settings()
    values: dict[str, Any] = {}
    customer_id: UUID | None = None
    consent = True
    chosen_locale = locale
    if booking_id is not None:
        row = booking_row or await conn.fetchrow(_BOOKING_FOR_SMS, booking_id)
        if row is None:
            raise ValueError(f"no booking {booking_id}")
        business_id = row["business_id"]
        chosen_locale = locale or row["customer_locale"] or row["business_locale"]
        values = booking_context(row, config, chosen_locale)
        if to is None:
            if row["phone"] is None:
                return None  # a hold has no customer yet: nobody to text
            to, customer_id, consent = row["phone"], row["customer_id"], row["sms_consent"]
    if to is None:
        raise ValueError("queue_sms needs a booking_id or a 'to' number")
    if business_id is None:
        raise ValueError(
            "queue_sms needs a booking_id or a business_id (messages are per business)"
        )
    if customer_id is None:
        known = await conn.fetchrow(
            "SELECT id, sms_consent FROM customer WHERE business_id = $1 AND phone = $2",
            business_id,
            to,
        )
        if known is not None:
            customer_id, consent = known["id"], known["sms_consent"]
    chosen_locale = chosen_locale or "en"
    values.update(context or {})
    body = render(template, chosen_locale, values)
    inserted = await conn.fetchrow(
        """
        INSERT INTO message (business_id, booking_id, customer_id, outbox_id, dedupe_key,
                             template, locale, to_phone, body, status, error_message)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        ON CONFLICT (business_id, dedupe_key) DO NOTHING
        RETURNING id, status
        """,
        business_id,
        booking_id,
        customer_id,
        outbox_id,
        dedupe_key,
        template,
        chosen_locale,
        to,
        body,
        "pending" if consent else "skipped",
        None if consent else OPTED_OUT,
    )
    if inserted is None:
        inserted = await conn.fetchrow(
            "SELECT id, status FROM message WHERE business_id = $1 AND dedupe_key = $2",
            business_id,
            dedupe_key,
        )
        assert inserted is not None
    if inserted["status"] not in ("pending", "sending"):
        return None
    return send_job(inserted["id"])


# --------------------------------------------------------------------------- booking events


def confirmation_due_at(
    made_at: datetime, confirm_within_minutes: int, starts_at: datetime
) -> datetime:
    """When a pending request will be answered: within the business's confirm_within,
    and never after the appointment. The pending SMS says it, and the confirmation
    promise (booking.guarantee.promises) is due then: one definition for both."""
    return min(made_at + timedelta(minutes=confirm_within_minutes), starts_at)


# Which message an outbox topic sends (None: no message, reminders only).
TOPIC_TEMPLATES: dict[str, str | None] = {
    "booking.created": "booking_confirmed",  # booking_pending when it awaits confirmation
    "booking.confirmed": "booking_confirmed",
    "booking.changed": "booking_changed",
    "booking.cancelled": "booking_cancelled",
    "booking.checked_in": None,
    "booking.completed": None,
    "booking.no_show": None,
}


async def on_booking_event(conn: asyncpg.Connection, event: OutboxEvent) -> list[FollowUpJob]:
    """The customer's SMS for a booking event, and the booking's reminders brought in line."""
    if event.topic not in TOPIC_TEMPLATES or event.aggregate_id is None:
        return []
    booking_id = event.aggregate_id
    jobs: list[FollowUpJob] = []
    template = TOPIC_TEMPLATES[event.topic]
    if event.topic == "booking.created" and event.payload.get("status") == "pending":
        template = "booking_pending"
    extra = _kind_of_booking(event)
    if extra is not None:
        template, kind_context = extra
    else:
        kind_context = {}
    if template is not None:
        context: dict[str, Any] = dict(kind_context)
        starts_raw = event.payload.get("starts_at")
        row = await conn.fetchrow(_BOOKING_FOR_SMS, booking_id)
        if row is not None and starts_raw:
            # The time the event announced, not whatever the booking says by now.
            locale = row["customer_locale"] or row["business_locale"]
            starts_at = datetime.fromisoformat(starts_raw)
            context["when"] = format_when(starts_at, row["time_zone"], locale)
            if template == "booking_pending":
                due = confirmation_due_at(
                    event.created_at, row["confirm_within_minutes"], starts_at
                )
                context["due"] = format_when(due, row["time_zone"], locale)
            stale = event.topic != "booking.cancelled" and starts_at <= datetime.now(UTC)
            if not stale:
                job = await queue_sms(
                    conn,
                    booking_id=booking_id,
                    template=template,
                    context=context,
                    dedupe_key=f"{event.topic}:{booking_id}:v{event.payload.get('version')}",
                    outbox_id=event.id,
                    booking_row=row,
                )
                if job is not None:
                    jobs.append(job)
    await sync_reminders(conn, booking_id)
    return jobs


def _kind_of_booking(event: OutboxEvent) -> tuple[str | None, dict[str, Any]] | None:
    """A confirmed class seat, visit or series occurrence has its own message (issue 12);
    a series says it once, with its first occurrence (each keeps its own reminders)."""
    payload = event.payload
    if event.topic != "booking.created" or payload.get("status") == "pending":
        return None
    if payload.get("session_id"):
        return "class_booked", {"seats": payload.get("seats", 1)}
    if payload.get("changes", {}).get("segments"):
        return "visit_booked", {"segments": payload["changes"]["segments"]}
    if payload.get("series_id"):
        if not payload.get("series_first"):
            return None, {}
        return "series_booked", {"count": payload.get("occurrences", 1)}
    return None


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True, slots=True)
class SendPolicy:
    backoff_base: float = DEFAULT_BACKOFF_BASE
    max_attempts: int = MAX_ATTEMPTS
    lease: timedelta = DEFAULT_LEASE


def backoff_seconds(attempt: int, base: float, retry_after: float | None) -> float:
    """Exponential with a little jitter, never sooner than the provider's Retry-After."""
    delay: float = min(MAX_BACKOFF, base * 2 ** max(0, attempt - 1)) * random.uniform(1.0, 1.2)
    return max(delay, retry_after or 0.0)


async def send_message(
    message_id: UUID, sender: SmsSender, settings: Settings, policy: SendPolicy | None = None
) -> float | None:
    """Send one message at most once per claim; seconds to wait before trying again, or None.

    None means there is nothing more to do (sent, failed for good, skipped, unknown).
    """
    rules = policy or SendPolicy()
    now = datetime.now(UTC)
    # The common case in one statement: a pending message that is due, whose customer has
    # not said STOP, is claimed; anything else takes the careful path below.
    row = await _claim_due(message_id, now + rules.lease)
    if row is None:
        outcome = await _claim_carefully(message_id, rules)
        if not isinstance(outcome, tuple):
            return outcome
        row = outcome[0]
    attempt: int = row["attempts"]
    body = render_link(row["body"], row["booking_id"], settings)
    try:
        sent = await sender.send(
            to=row["to_phone"], body=body, status_callback=status_callback_url(settings)
        )
    except SmsSendError as exc:
        return await _record_failure(message_id, attempt, exc, rules)
    async with db.transaction() as conn:
        await conn.execute(
            """
            UPDATE message SET status = 'sent', provider = $2, provider_sid = $3,
                provider_status = $4, sent_at = now(), claimed_until = NULL,
                error_code = NULL, error_message = NULL, updated_at = now()
            WHERE id = $1
            """,
            message_id,
            sender.name,
            sent.provider_sid,
            sent.status,
        )
    metrics.SMS.labels("sent", "").inc()
    events.info("sms sent", message_id=str(message_id), attempt=attempt, provider=sender.name)
    return None


async def _claim_due(message_id: UUID, claimed_until: datetime) -> asyncpg.Record | None:
    async with db.connection() as conn:
        row: asyncpg.Record | None = await conn.fetchrow(
            """
            UPDATE message m SET status = 'sending', attempts = m.attempts + 1,
                claimed_until = $2, updated_at = now()
            WHERE m.id = $1 AND m.status = 'pending'
              AND m.next_attempt_at <= now() + interval '1 second'
              AND NOT EXISTS (SELECT 1 FROM customer c
                              WHERE c.id = m.customer_id AND c.sms_consent IS FALSE)
            RETURNING m.attempts, m.to_phone, m.body, m.booking_id
            """,
            message_id,
            claimed_until,
        )
    return row


async def _claim_carefully(
    message_id: UUID, rules: SendPolicy
) -> float | tuple[asyncpg.Record] | None:
    """A live claim, a backoff, an opt-out or nothing to send: the wait or None; else the
    claimed row (a lapsed claim taken over)."""
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            """
            SELECT m.id, m.status, m.to_phone, m.body, m.booking_id, m.attempts,
                   m.next_attempt_at, m.claimed_until, c.sms_consent
            FROM message m LEFT JOIN customer c ON c.id = m.customer_id
            WHERE m.id = $1 FOR UPDATE OF m
            """,
            message_id,
        )
        if row is None or row["status"] not in ("pending", "sending"):
            return None
        now = datetime.now(UTC)
        claimed_until: datetime | None = row["claimed_until"]
        next_attempt_at: datetime = row["next_attempt_at"]
        if row["status"] == "sending" and claimed_until is not None and claimed_until > now:
            return (claimed_until - now).total_seconds()  # an attempt may be in flight
        if row["status"] == "pending" and next_attempt_at > now + timedelta(seconds=1):
            return (next_attempt_at - now).total_seconds()
        if row["sms_consent"] is False:
            await conn.execute(
                "UPDATE message SET status = 'skipped', error_message = $2, claimed_until = NULL,"
                " updated_at = now() WHERE id = $1",
                message_id,
                OPTED_OUT,
            )
            metrics.SMS.labels("skipped", "").inc()
            return None
        claimed = await conn.fetchrow(
            "UPDATE message SET status = 'sending', attempts = attempts + 1, claimed_until = $2, "
            "updated_at = now() WHERE id = $1 "
            "RETURNING attempts, to_phone, body, booking_id",
            message_id,
            now + rules.lease,
        )
        assert claimed is not None
        return (claimed,)


async def _record_failure(
    message_id: UUID, attempt: int, exc: SmsSendError, rules: SendPolicy
) -> float | None:
    retry = exc.retryable and attempt < rules.max_attempts
    delay = backoff_seconds(attempt, rules.backoff_base, exc.retry_after) if retry else None
    async with db.transaction() as conn:
        before = await conn.fetchval(
            "SELECT status FROM message WHERE id = $1 FOR UPDATE", message_id
        )
        failed = await conn.fetchrow(
            f"""
            UPDATE message SET status = $2, error_code = $3, error_message = $4,
                next_attempt_at = now() + make_interval(secs => $5), claimed_until = NULL,
                updated_at = now()
            WHERE id = $1 RETURNING customer_id, {MESSAGE_EVENT_COLUMNS}
            """,
            message_id,
            "pending" if retry else "failed",
            exc.code if exc.code is not None else exc.http_status,
            exc.message[:500],
            delay or 0.0,
        )
        assert failed is not None
        customer_id = failed["customer_id"]
        if not retry and before not in FINAL_STATUSES:
            await emit_final_status(conn, failed)  # Twilio refused it: it will never arrive
        if exc.opted_out and customer_id is not None:
            # Twilio knows the number said STOP: remember it so nothing else is tried.
            await conn.execute(
                "UPDATE customer SET sms_consent = false WHERE phone = "
                "(SELECT phone FROM customer WHERE id = $1)",
                customer_id,
            )
    code = exc.code if exc.code is not None else exc.http_status
    metrics.SMS.labels("retry" if retry else "failed", str(code or "")).inc()
    events.warning(
        "sms attempt failed",
        message_id=str(message_id),
        attempt=attempt,
        error_code=code,
        retry_in=delay,
    )
    return delay


async def messages_due_for_requeue(limit: int = 500, grace_seconds: float = 10.0) -> list[UUID]:
    """Messages that should be sending but may have lost their job (Redis outage, crash)."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            """
            SELECT id FROM message
            WHERE (status = 'pending' AND next_attempt_at <= now() - make_interval(secs => $2))
               OR (status = 'sending' AND claimed_until < now())
            ORDER BY next_attempt_at LIMIT $1
            """,
            limit,
            grace_seconds,
        )
    return [row["id"] for row in rows]


# --------------------------------------------------------------------------- history

_TOKEN_IN_LINK = re.compile(r"bt\.[0-9a-f]{32}\.\d+\.[A-Za-z0-9_-]+")


def redact_links(body: str) -> str:
    """Bodies stored before issue 18 carry the customer's booking token; the API never
    shows it (newer bodies hold only LINK_TOKEN_MARK)."""
    return _TOKEN_IN_LINK.sub("bt.[redacted]", body).replace(LINK_TOKEN_MARK, "bt.[redacted]")


async def message_history(principal: Principal, booking_id: UUID) -> list[dict[str, Any]]:
    """The booking's SMS, oldest first; whoever may read the booking may read them."""
    await get_booking(principal, booking_id)
    async with db.connection() as conn:
        rows = await conn.fetch(
            """
            SELECT id, business_id, template, locale, to_phone, body, status, provider,
                   provider_sid,
                   provider_status, error_code, error_message, attempts, created_at,
                   sent_at, delivered_at
            FROM message WHERE booking_id = $1 ORDER BY created_at, id
            """,
            booking_id,
        )
    return [dict(row) | {"body": redact_links(row["body"])} for row in rows]
