"""Feedback after the visit: ask once, read the answer, act on a low score.

The life of one ``feedback`` row (one per booking, ``feedback_once_per_booking``):

1. ``booking.completed`` reaches the outbox handler :func:`on_event`, which schedules the
   question at completion + the business's ``feedback_delay_minutes`` (a row with a due
   time, STYLE 8; a rerun of the handler finds the row and does nothing).
2. The ``ask_for_feedback`` cron (:func:`ask_due`) takes due rows ``FOR UPDATE SKIP
   LOCKED``: a booking that is no longer ``completed`` or a customer who replied STOP is
   recorded as ``not_asked`` (with the reason); otherwise one SMS is queued with the
   dedupe key ``feedback:<booking>`` and the row becomes ``asked``. Workers running it
   twice, or a worker killed before its commit, still leave one message (the row and the
   message are written in one transaction; the unique dedupe key is the last word).
3. The answer - an SMS reply ("5", "4 grazie!"; STOP stays an opt-out, handled before
   this) or the form on the booking's page - is :func:`record`: the first answer counts,
   it is a ``feedback.received`` history event (actor customer, channel sms or web) and
   a ``feedback.received`` outbox event (partner webhooks).
4. That event's handler (:func:`on_event` again): a score of :data:`LOW_SCORE` or less is a
   ``callback`` promise due within the business's ``callback_within_minutes`` (watched by
   the promise watchdog like every other) and one alert SMS to the on-duty phone.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.bookings.checks import check_access
from booking.errors import InvalidInput, InvalidTransition, NotFound
from booking.guarantee import promises
from booking.journey import wording
from booking.notifications.service import manage_link, queue_sms
from booking.notifications.templates import format_when
from booking.outbox.dispatch import FollowUpJob, OutboxEvent
from booking.settings import Settings
from booking.wire_time import stored_json

FEEDBACK_RECEIVED = "feedback.received"
LOW_SCORE = 2
ASK_BATCH = 200
# A reply counts as feedback for this long after the question.
REPLY_WINDOW = timedelta(days=14)
MAX_COMMENT = 2000
# "5", "4 grazie!", "3/5 ok", "2 - late" ; a digit 1-5 first, then an optional comment.
_SCORE = re.compile(r"^\s*([1-5])(?:\s*/\s*5)?(?![0-9])[\s.,;:!)\-]*(.*)$", re.DOTALL)

FEEDBACK_COLUMNS = """
    f.id, f.business_id, f.booking_id, f.status, f.ask_at, f.asked_at, f.not_asked_reason,
    f.score, f.comment, f.channel, f.received_at, f.called_back_at
"""


def parse_score(body: str) -> tuple[int, str] | None:
    """(score, comment) from an SMS reply, or None when it does not start with 1-5."""
    found = _SCORE.match(body)
    if found is None:
        return None
    return int(found.group(1)), found.group(2).strip()[:MAX_COMMENT]


# --------------------------------------------------------------------------- scheduling


async def schedule(conn: asyncpg.Connection, event: OutboxEvent) -> None:
    """The question for a completed booking, due after the business's delay (once)."""
    await conn.execute(
        """
        INSERT INTO feedback (business_id, booking_id, ask_at)
        SELECT b.business_id, b.id,
               $2::timestamptz + make_interval(mins => biz.feedback_delay_minutes)
        FROM booking b JOIN business biz ON biz.id = b.business_id WHERE b.id = $1
        ON CONFLICT ON CONSTRAINT feedback_once_per_booking DO NOTHING
        """,
        event.aggregate_id,
        event.created_at,
    )


_DUE = """
    SELECT f.id, f.business_id, f.booking_id, b.status AS booking_status, c.sms_consent,
           c.phone, c.name AS customer_name, c.locale AS customer_locale,
           biz.name AS business_name, biz.locale AS business_locale, biz.feedback_wording,
           s.name AS service_name
    FROM feedback f
    JOIN booking b ON b.business_id = f.business_id AND b.id = f.booking_id
    JOIN business biz ON biz.id = f.business_id
    JOIN service s ON s.business_id = b.business_id AND s.id = b.service_id
    LEFT JOIN customer c ON c.business_id = b.business_id AND c.id = b.customer_id
    WHERE f.status = 'scheduled' AND f.ask_at <= now()
    ORDER BY f.ask_at LIMIT $1
    FOR UPDATE OF f SKIP LOCKED
"""


def _why_not(row: asyncpg.Record) -> str | None:
    if row["booking_status"] != "completed":
        return f"booking is {row['booking_status']}"
    if row["phone"] is None:
        return "no phone number"
    if row["sms_consent"] is False:
        return "customer opted out of SMS (STOP)"
    return None


async def ask_due(
    conn: asyncpg.Connection, settings: Settings, batch: int = ASK_BATCH
) -> list[FollowUpJob]:
    """One pass (caller's transaction): ask every due row once, or record why not."""
    jobs: list[FollowUpJob] = []
    for row in await conn.fetch(_DUE, batch):
        reason = _why_not(row)
        if reason is not None:
            await conn.execute(
                "UPDATE feedback SET status = 'not_asked', not_asked_reason = $2 "
                "WHERE business_id = $1 AND id = $3",
                row["business_id"],
                reason,
                row["id"],
            )
            continue
        locale = row["customer_locale"] or row["business_locale"] or "en"
        text = wording.feedback_request(
            row["feedback_wording"],
            locale,
            {
                "business": row["business_name"],
                "name": (row["customer_name"] or "").split(" ")[0],
                "service": row["service_name"],
                "link": manage_link(settings, row["booking_id"]),
            },
        )
        job = await queue_sms(
            conn,
            booking_id=row["booking_id"],
            template=wording.REQUEST_TEMPLATE,
            context={"text": text},
            dedupe_key=f"feedback:{row['booking_id']}",
            settings=settings,
        )
        message_id = await conn.fetchval(
            "SELECT id FROM message WHERE business_id = $1 AND dedupe_key = $2",
            row["business_id"],
            f"feedback:{row['booking_id']}",
        )
        await conn.execute(
            "UPDATE feedback SET status = 'asked', asked_at = now(), message_id = $3 "
            "WHERE business_id = $1 AND id = $2",
            row["business_id"],
            row["id"],
            message_id,
        )
        if job is not None:
            jobs.append(job)
    return jobs


# --------------------------------------------------------------------------- answers


async def record(
    conn: asyncpg.Connection,
    feedback_id: UUID,
    score: int,
    comment: str,
    channel: str,
) -> dict[str, Any] | None:
    """The customer's answer (first one counts); None when it was answered already."""
    if not 1 <= score <= 5:
        raise InvalidInput("The score is 1 to 5.", field="score")
    row = await conn.fetchrow(
        f"""
        UPDATE feedback f SET status = 'received', score = $2, comment = $3, channel = $4,
               received_at = now()
        WHERE f.id = $1 AND f.status IN ('scheduled', 'asked')
        RETURNING {FEEDBACK_COLUMNS}
        """,
        feedback_id,
        score,
        comment[:MAX_COMMENT],
        channel,
    )
    if row is None:
        return None
    booking = await conn.fetchrow(
        "SELECT id, business_id, status, staff_id, service_id, channel FROM booking "
        "WHERE business_id = $1 AND id = $2",
        row["business_id"],
        row["booking_id"],
    )
    assert booking is not None
    changes = {"score": score, "comment": row["comment"]}
    await conn.execute(
        """
        INSERT INTO booking_history (booking_id, business_id, event, from_status, to_status,
                                     actor_type, actor_id, channel, changes)
        VALUES ($1, $2, $3, $4, $4, 'customer', $5, $6, $7::jsonb)
        """,
        booking["id"],
        booking["business_id"],
        FEEDBACK_RECEIVED,
        booking["status"],
        booking["id"].hex,
        channel,
        stored_json(changes),
    )
    payload = {
        "event": FEEDBACK_RECEIVED,
        "booking_id": str(booking["id"]),
        "feedback_id": str(row["id"]),
        "score": score,
        "comment": row["comment"],
        "channel": channel,
        "service_id": str(booking["service_id"]),
        "staff_id": str(booking["staff_id"]),
        "received_at": row["received_at"],
    }
    await conn.execute(
        "INSERT INTO outbox (business_id, topic, aggregate_id, payload) "
        "VALUES ($1, $2, $3, $4::jsonb)",
        booking["business_id"],
        FEEDBACK_RECEIVED,
        booking["id"],
        stored_json(payload),
    )
    return dict(row)


async def record_sms_reply(from_phone: str, body: str) -> tuple[str, UUID | None] | None:
    """An SMS reply that answers the sender's open question; None when it is not one."""
    parsed = parse_score(body)
    if parsed is None:
        return None
    async with db.transaction() as conn:
        open_question = await conn.fetchrow(
            """
            SELECT f.id, f.booking_id FROM feedback f
            JOIN booking b ON b.business_id = f.business_id AND b.id = f.booking_id
            JOIN customer c ON c.business_id = b.business_id AND c.id = b.customer_id
            WHERE c.phone = $1 AND f.status = 'asked' AND f.asked_at > now() - $2::interval
            ORDER BY f.asked_at DESC LIMIT 1
            """,
            from_phone,
            REPLY_WINDOW,
        )
        if open_question is None:
            return None
        await record(conn, open_question["id"], parsed[0], parsed[1], "sms")
    return f"feedback recorded: {parsed[0]}", open_question["booking_id"]


async def answer(booking_id: UUID, score: int, comment: str, channel: str = "web") -> None:
    """The customer's answer from their booking link (the page's form or the API)."""
    async with db.transaction() as conn:
        feedback_id = await conn.fetchval(
            "SELECT id FROM feedback WHERE booking_id = $1", booking_id
        )
        if feedback_id is None:
            raise InvalidTransition("There is no visit to give feedback on yet.")
        if await record(conn, feedback_id, score, comment.strip(), channel) is None:
            raise InvalidTransition("This visit has feedback already.")


# --------------------------------------------------------------------------- low scores


async def _on_received(conn: asyncpg.Connection, event: OutboxEvent) -> list[FollowUpJob]:
    score = int(event.payload["score"])
    if score > LOW_SCORE or event.aggregate_id is None:
        return []
    info = await conn.fetchrow(
        """
        SELECT b.id, b.business_id, b.reference_code, b.starts_at, biz.name, biz.time_zone,
               biz.locale, biz.on_duty_phone, biz.callback_within_minutes,
               c.name AS customer_name, c.phone
        FROM booking b JOIN business biz ON biz.id = b.business_id
        LEFT JOIN customer c ON c.business_id = b.business_id AND c.id = b.customer_id
        WHERE b.id = $1
        """,
        event.aggregate_id,
    )
    if info is None:
        return []
    made_at = event.created_at
    due_at = made_at + timedelta(minutes=info["callback_within_minutes"])
    await promises.make(
        conn,
        business_id=info["business_id"],
        booking_id=info["id"],
        kind="callback",
        subject=f"feedback:{event.payload['feedback_id']}",
        customer_phone=info["phone"],
        made_at=made_at,
        due_at=due_at,
    )
    if not info["on_duty_phone"]:
        return []
    locale = info["locale"] or "en"
    alert = await queue_sms(
        conn,
        to=info["on_duty_phone"],
        business_id=info["business_id"],
        locale=locale,
        template=wording.ALERT_TEMPLATE,
        context={
            "business": info["name"],
            "score": score,
            "reference": info["reference_code"],
            "customer": info["customer_name"] or "",
            "phone": info["phone"] or "",
            "comment": str(event.payload.get("comment") or "")[:160],
            "due": format_when(due_at, info["time_zone"], locale),
        },
        dedupe_key=f"feedback:{event.payload['feedback_id']}:alert",
        outbox_id=event.id,
    )
    return [alert] if alert is not None else []


async def on_event(conn: asyncpg.Connection, event: OutboxEvent) -> list[FollowUpJob]:
    """The outbox handler (``booking.worker.OUTBOX_HANDLERS``)."""
    if event.topic == "booking.completed" and event.aggregate_id is not None:
        await schedule(conn, event)
        return []
    if event.topic == FEEDBACK_RECEIVED:
        return await _on_received(conn, event)
    return []


# --------------------------------------------------------------------------- reading


async def booking_feedback(principal: Principal, booking_id: UUID) -> dict[str, Any]:
    """The booking's feedback as whoever may read the booking sees it."""
    async with db.connection() as conn:
        booking = await conn.fetchrow(
            "SELECT b.id, b.business_id, b.partner_id, biz.time_zone FROM booking b "
            "JOIN business biz ON biz.id = b.business_id WHERE b.id = $1",
            booking_id,
        )
        if booking is None:
            raise NotFound("No such booking.")
        check_access(principal, booking)
        row = await conn.fetchrow(
            f"SELECT {FEEDBACK_COLUMNS} FROM feedback f "
            "WHERE f.business_id = $1 AND f.booking_id = $2",
            booking["business_id"],
            booking_id,
        )
        callback = await conn.fetchrow(
            "SELECT id, status, due_at FROM promise WHERE business_id = $1 AND booking_id = $2 "
            "AND kind = 'callback' ORDER BY made_at DESC LIMIT 1",
            booking["business_id"],
            booking_id,
        )
    result: dict[str, Any] = {
        "booking_id": booking_id,
        "time_zone": booking["time_zone"],
        "status": "none",
        "score": None,
        "comment": None,
        "channel": None,
        "ask_at": None,
        "asked_at": None,
        "received_at": None,
        "not_asked_reason": None,
        "callback": dict(callback) if callback else None,
    }
    if row is not None:
        result.update({key: row[key] for key in result if key in row})
        result["comment"] = row["comment"] if row["status"] == "received" else None
    return result


async def record_callback(principal: Principal, booking_id: UUID) -> dict[str, Any]:
    """Staff called the customer back: the callback promise is kept (by its due time)."""
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            "SELECT f.business_id, f.id FROM feedback f WHERE f.booking_id = $1", booking_id
        )
        if row is None or not principal.sees_business(row["business_id"]):
            raise NotFound("No such booking.")
        principal.require("bookings:change", row["business_id"])
        updated = await conn.fetchval(
            "UPDATE feedback SET called_back_at = coalesce(called_back_at, now()) "
            "WHERE business_id = $1 AND id = $2 AND status = 'received' RETURNING called_back_at",
            row["business_id"],
            row["id"],
        )
        if updated is None:
            raise InvalidTransition("There is no answer to call back about.")
        await promises.settle(conn, "callback", f"feedback:{row['id']}", kept=True)
    return await booking_feedback(principal, booking_id)
