"""SMS rules: queue a message inside the caller's transaction, send it once, track it.

A message is a row first (``queue_sms``, unique ``dedupe_key``) and an arq job
second (``send_sms`` with job id ``sms:<message id>``), so running anything twice
never creates or sends a second message.

Sending (claim, provider call, record) is notifications/sending.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID, uuid5

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.access.tokens import make_booking_token
from booking.bookings.queries import get_booking
from booking.notifications.reminders import sync_reminders_of
from booking.notifications.templates import format_when, render
from booking.outbox.dispatch import (
    FollowUpJob,
    OutboxEvent,
    before_commit,
    once_per_transaction,
    transaction_events,
)
from booking.settings import Settings, get_settings

SEND_JOB = "send_sms"
SEND_BATCH_JOB = "send_sms_batch"  # the sends of one relay pass, as one job
STATUS_CALLBACK_PATH = "/v1/twilio/status"
OPTED_OUT = "customer opted out of SMS (STOP)"

_configured: Settings | None = None


def configure(settings: Settings) -> None:
    """The settings the worker runs with (links, status callback URL)."""
    global _configured  # one per process, set at worker start-up
    _configured = settings


def current_settings() -> Settings:
    return _configured or get_settings()


def send_job(message_id: UUID) -> FollowUpJob:
    return FollowUpJob(
        function=SEND_JOB,
        job_id=f"sms:{message_id}",
        args=(str(message_id),),
        batch_as=SEND_BATCH_JOB,
    )


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
# The same for every booking of a relay pass at once.
_BOOKINGS_FOR_SMS = _BOOKING_FOR_SMS.replace("WHERE b.id = $1", "WHERE b.id = ANY($1::uuid[])")


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
    batched: bool = False,
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
    * ``batched``: the row is written with every other batched message of the handler
      transaction in one statement just before it commits (:func:`before_commit`), for
      a caller that reads nothing of it back. A message's id follows from its business
      and key (:func:`message_id`), so the job is known before the row is written and a
      rerun (a relay pass whose jobs Redis refused) returns the same job; a message the
      key already names and that is no longer unsent makes that job a no-op.
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
    message = _NewMessage(
        id=message_id(business_id, dedupe_key),
        business_id=business_id,
        booking_id=booking_id,
        customer_id=customer_id,
        outbox_id=outbox_id,
        dedupe_key=dedupe_key,
        template=template,
        locale=chosen_locale,
        to_phone=to,
        body=render(template, chosen_locale, values),
        status="pending" if consent else "skipped",
        error_message=None if consent else OPTED_OUT,
    )
    if batched:
        await before_commit(conn, _insert_messages, message)
        return send_job(message.id) if consent else None
    inserted = await conn.fetchrow(
        f"""
        INSERT INTO message ({_MESSAGE_COLUMNS}) VALUES ({_MESSAGE_VALUES})
        ON CONFLICT (business_id, dedupe_key) DO NOTHING
        RETURNING id, status
        """,
        *message,
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


# Message ids are derived from (business, dedupe key): the key's one message has one id.
_MESSAGE_IDS = UUID("5f1d8a52-3c1e-4b8e-9a57-6d0c2b7e4a11")


def message_id(business_id: UUID, dedupe_key: str) -> UUID:
    """The id of the business's message with this dedupe key (messages written before
    this rule keep the random id they were given)."""
    return uuid5(_MESSAGE_IDS, f"{business_id}/{dedupe_key}")


class _NewMessage(NamedTuple):
    """A message row as :func:`queue_sms` writes it (the fields in column order)."""

    id: UUID
    business_id: UUID
    booking_id: UUID | None
    customer_id: UUID | None
    outbox_id: int | None
    dedupe_key: str
    template: str
    locale: str
    to_phone: str
    body: str
    status: str
    error_message: str | None


_MESSAGE_COLUMNS = ", ".join(_NewMessage._fields)
_MESSAGE_VALUES = ", ".join(f"${i}" for i in range(1, len(_NewMessage._fields) + 1))
_MESSAGE_TYPES = (
    "uuid", "uuid", "uuid", "uuid", "bigint", "text", "text", "text", "text", "text", "text",
    "text",
)  # fmt: skip


async def _insert_messages(conn: asyncpg.Connection, messages: list[_NewMessage]) -> None:
    """The batched messages of a handler transaction, in one statement."""
    arrays = [list(column) for column in zip(*messages, strict=True)]
    await conn.execute(
        f"""
        INSERT INTO message ({_MESSAGE_COLUMNS})
        SELECT * FROM unnest({", ".join(f"${i}::{t}[]" for i, t in enumerate(_MESSAGE_TYPES, 1))})
        ON CONFLICT (business_id, dedupe_key) DO NOTHING
        """,
        *arrays,
    )


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
        row = await _booking_for_sms(conn, booking_id)
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
                    batched=True,  # no later handler of the pass reads it back
                )
                if job is not None:
                    jobs.append(job)
    # Once per relay pass for all its bookings (one statement), before it commits.
    await before_commit(conn, sync_reminders_of, booking_id)
    return jobs


async def _booking_for_sms(conn: asyncpg.Connection, booking_id: UUID) -> asyncpg.Record | None:
    """The booking as its SMS needs it; inside a relay pass, read once for every booking
    of the pass's events (no handler of the pass writes what this reads)."""
    events = transaction_events()
    if len(events) > 1:

        async def read_all() -> dict[UUID, asyncpg.Record]:
            wanted = {
                e.aggregate_id
                for e in events
                if e.topic in TOPIC_TEMPLATES and e.aggregate_id is not None
            }
            rows = await conn.fetch(_BOOKINGS_FOR_SMS, sorted(wanted))
            return {row["id"]: row for row in rows}

        read = await once_per_transaction("sms.bookings", read_all)
        if booking_id in read:
            return read[booking_id]
    one: asyncpg.Record | None = await conn.fetchrow(_BOOKING_FOR_SMS, booking_id)
    return one


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
