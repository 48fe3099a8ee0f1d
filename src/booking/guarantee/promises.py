"""Promises with due times: every customer-facing commitment is a row the watchdog watches.

Kinds (what was promised, and what keeps it):

* ``confirmation`` - a pending booking will be answered within the business's
  ``confirm_within_minutes`` (bounded by the start). Kept when the booking leaves
  ``pending`` (confirmed, cancelled, ...) by the due time.
* ``offer_follow_up`` - a lost slot will be resolved while its alternatives are held.
  Kept when the customer accepts (or the booking is otherwise moved or cancelled)
  before the offer expires; broken when the offer expires unanswered.
* ``reply`` - an inbound SMS that is not a keyword gets an answer within
  :data:`REPLY_WITHIN`. Kept when any message goes to that phone afterwards.
* ``callback`` - a low feedback score (booking/journey/feedback.py) is a call back within
  the business's ``callback_within_minutes``. Kept when staff record the call
  (``POST /v1/bookings/{id}/feedback/callback``) by the due time.

The watchdog (:func:`run_watchdog`), before the due time and only while nothing has
happened, sends the customer one "we are working on it" update and alerts staff (SMS to
the business's on-duty phone and a ``promise.at_risk`` outbox event for partner
webhooks); at resolution it records the promise as kept or broken.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.guarantee import events
from booking.guarantee.sql import STILL_LOST
from booking.notifications.service import confirmation_due_at, queue_sms
from booking.notifications.templates import format_when
from booking.outbox.dispatch import FollowUpJob

REPLY_WITHIN = timedelta(hours=4)
MAX_NUDGE_LEAD = timedelta(minutes=30)
WATCH_BATCH = 500
KINDS = ("confirmation", "offer_follow_up", "reply", "callback")
WHAT = {
    "confirmation": {"en": "confirming a booking", "it": "conferma della prenotazione"},
    "offer_follow_up": {"en": "rebooking a lost slot", "it": "nuovo orario per uno slot perso"},
    "reply": {"en": "answering a customer's SMS", "it": "risposta all'SMS di un cliente"},
    "callback": {"en": "calling back after a low score", "it": "richiamata dopo un voto basso"},
}
UPDATE_TEMPLATE = {
    "confirmation": "promise_update_confirmation",
    "offer_follow_up": "promise_update_offer",
    "reply": "promise_update_reply",
    "callback": "promise_update_callback",
}


def nudge_time(made_at: datetime, due_at: datetime) -> datetime:
    """When to send the update: MAX_NUDGE_LEAD before due, or halfway for short promises."""
    lead = min(MAX_NUDGE_LEAD, (due_at - made_at) / 2)
    return due_at - lead


async def make(
    conn: asyncpg.Connection,
    *,
    business_id: UUID,
    kind: str,
    subject: str,
    made_at: datetime,
    due_at: datetime,
    booking_id: UUID | None = None,
    customer_phone: str | None = None,
) -> UUID | None:
    """Record a promise (idempotent per business, kind and subject); None if it existed."""
    due_at = max(due_at, made_at)
    promise_id: UUID | None = await conn.fetchval(
        """
        INSERT INTO promise (business_id, booking_id, kind, subject, customer_phone, made_at,
                             nudge_at, due_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (business_id, kind, subject) DO NOTHING RETURNING id
        """,
        business_id,
        booking_id,
        kind,
        subject,
        customer_phone,
        made_at,
        nudge_time(made_at, due_at),
        due_at,
    )
    return promise_id


async def settle(
    conn: asyncpg.Connection, kind: str, subject: str, *, kept: bool, alerted: bool = False
) -> None:
    """Record the outcome of an open promise now (no-op when already settled)."""
    await conn.execute(
        """
        UPDATE promise SET status = CASE WHEN $3 AND now() <= due_at THEN 'kept' ELSE 'broken' END,
               resolved_at = CASE WHEN $3 THEN now() ELSE resolved_at END,
               alerted_at = CASE WHEN $4 THEN coalesce(alerted_at, now()) ELSE alerted_at END
        WHERE kind = $1 AND subject = $2 AND status = 'open'
        """,
        kind,
        subject,
        kept,
        alerted,
    )


async def _resolved_at(conn: asyncpg.Connection, promise: asyncpg.Record) -> datetime | None:
    """When the promised thing happened, or None while it has not."""
    kind = promise["kind"]
    if kind == "confirmation":
        moment: datetime | None = await conn.fetchval(
            "SELECT min(occurred_at) FROM booking_history WHERE booking_id = $1 "
            "AND from_status = 'pending' AND to_status <> 'pending' AND occurred_at >= $2",
            promise["booking_id"],
            promise["made_at"],
        )
        return moment
    if kind == "offer_follow_up":
        row = await conn.fetchrow(
            "SELECT o.status, o.decided_at, b.status AS booking_status, b.updated_at, "
            f"{STILL_LOST} AS still_lost FROM reschedule_offer o "
            "JOIN booking b ON b.id = o.booking_id WHERE o.id = $1::uuid",
            promise["subject"],
        )
        if row is None:
            return None
        if row["status"] in ("accepted", "withdrawn"):
            decided: datetime = row["decided_at"]
            return decided
        if not row["still_lost"] or row["booking_status"] not in ("pending", "confirmed"):
            updated: datetime = row["updated_at"]
            return updated
        return None
    if kind == "callback":  # subject "feedback:<feedback id>"
        called: datetime | None = await conn.fetchval(
            "SELECT called_back_at FROM feedback WHERE business_id = $1 AND id = $2::uuid",
            promise["business_id"],
            promise["subject"].split(":", 1)[1],
        )
        return called
    replied: datetime | None = await conn.fetchval(
        "SELECT min(created_at) FROM message WHERE to_phone = $1 AND created_at > $2 "
        "AND template NOT LIKE 'promise_%'",
        promise["customer_phone"],
        promise["made_at"],
    )
    return replied


_PROMISE_CONTEXT = """
    SELECT biz.name AS business_name, biz.time_zone, biz.locale AS business_locale,
           biz.on_duty_phone, b.reference_code, c.locale AS customer_locale
    FROM business biz
    LEFT JOIN booking b ON b.id = $2
    LEFT JOIN customer c ON c.id = b.customer_id
    WHERE biz.id = $1
"""


async def _nudge(conn: asyncpg.Connection, promise: asyncpg.Record) -> list[FollowUpJob]:
    """The customer's one update and the staff alert, queued in this transaction."""
    jobs: list[FollowUpJob] = []
    info = await conn.fetchrow(_PROMISE_CONTEXT, promise["business_id"], promise["booking_id"])
    assert info is not None
    locale = info["customer_locale"] or info["business_locale"] or "en"
    due = format_when(promise["due_at"], info["time_zone"], locale)
    template = UPDATE_TEMPLATE[promise["kind"]]
    job: FollowUpJob | None
    if promise["booking_id"] is not None:
        job = await queue_sms(
            conn,
            booking_id=promise["booking_id"],
            template=template,
            context={"due": due},
            dedupe_key=f"promise:{promise['id']}:update",
        )
    elif promise["customer_phone"]:
        job = await queue_sms(
            conn,
            to=promise["customer_phone"],
            business_id=promise["business_id"],
            locale=locale,
            template=template,
            context={"due": due, "business": info["business_name"]},
            dedupe_key=f"promise:{promise['id']}:update",
        )
    else:
        job = None
    if job is not None:
        jobs.append(job)
    staff_locale = info["business_locale"] or "en"
    if info["on_duty_phone"]:
        reference = info["reference_code"]
        alert = await queue_sms(
            conn,
            to=info["on_duty_phone"],
            business_id=promise["business_id"],
            locale=staff_locale,
            template="promise_alert_staff",
            context={
                "business": info["business_name"],
                "what": WHAT[promise["kind"]].get(staff_locale, WHAT[promise["kind"]]["en"]),
                "for_booking": f" ({reference})" if reference else "",
                "due": format_when(promise["due_at"], info["time_zone"], staff_locale),
            },
            dedupe_key=f"promise:{promise['id']}:alert",
        )
        if alert is not None:
            jobs.append(alert)
    await events.emit(
        conn,
        promise["business_id"],
        events.PROMISE_AT_RISK,
        promise["booking_id"],
        _payload(promise),
    )
    return jobs


def _payload(promise: asyncpg.Record) -> dict[str, Any]:
    return {
        "promise_id": str(promise["id"]),
        "kind": promise["kind"],
        "booking_id": str(promise["booking_id"]) if promise["booking_id"] else None,
        "due_at": promise["due_at"].isoformat(),
    }


async def run_watchdog(conn: asyncpg.Connection, batch: int = WATCH_BATCH) -> list[FollowUpJob]:
    """One pass over open promises (caller's transaction): settle, nudge, record breaches."""
    now: datetime = await conn.fetchval("SELECT now()")
    rows = await conn.fetch(
        """
        SELECT id, business_id, booking_id, kind, subject, customer_phone, made_at, nudge_at,
               due_at, nudged_at, alerted_at
        FROM promise WHERE status = 'open' ORDER BY nudge_at LIMIT $1
        FOR UPDATE SKIP LOCKED
        """,
        batch,
    )
    jobs: list[FollowUpJob] = []
    for promise in rows:
        resolved = await _resolved_at(conn, promise)
        if resolved is not None:
            await conn.execute(
                "UPDATE promise SET status = $2, resolved_at = $3 WHERE id = $1",
                promise["id"],
                "kept" if resolved <= promise["due_at"] else "broken",
                resolved,
            )
            continue
        if now >= promise["due_at"]:
            await conn.execute("UPDATE promise SET status = 'broken' WHERE id = $1", promise["id"])
            await events.emit(
                conn,
                promise["business_id"],
                events.PROMISE_BROKEN,
                promise["booking_id"],
                _payload(promise),
            )
            continue
        if now >= promise["nudge_at"] and promise["nudged_at"] is None:
            jobs.extend(await _nudge(conn, promise))
            await conn.execute(
                "UPDATE promise SET nudged_at = now(), alerted_at = now() WHERE id = $1",
                promise["id"],
            )
    return jobs


async def record_pending_confirmation(
    conn: asyncpg.Connection, booking_id: UUID, made_at: datetime
) -> None:
    """A pending booking is a promise to answer within the business's confirm_within."""
    row = await conn.fetchrow(
        "SELECT b.business_id, b.starts_at, b.status, biz.confirm_within_minutes "
        "FROM booking b JOIN business biz ON biz.id = b.business_id WHERE b.id = $1",
        booking_id,
    )
    if row is None or row["starts_at"] <= made_at:
        return
    due_at = confirmation_due_at(made_at, row["confirm_within_minutes"], row["starts_at"])
    await make(
        conn,
        business_id=row["business_id"],
        booking_id=booking_id,
        kind="confirmation",
        subject=str(booking_id),
        made_at=made_at,
        due_at=due_at,
    )


async def record_reply_owed(
    conn: asyncpg.Connection, inbound_id: int, phone: str, made_at: datetime
) -> UUID | None:
    """An inbound SMS that is not a keyword: the business owes the sender an answer."""
    business_id = await conn.fetchval(
        "SELECT business_id FROM customer WHERE phone = $1 ORDER BY created_at DESC LIMIT 1",
        phone,
    )
    if business_id is None:
        return None
    booking_id = await conn.fetchval(
        "SELECT b.id FROM booking b JOIN customer c ON c.id = b.customer_id "
        "WHERE c.phone = $1 AND b.business_id = $2 ORDER BY b.starts_at DESC LIMIT 1",
        phone,
        business_id,
    )
    return await make(
        conn,
        business_id=business_id,
        booking_id=booking_id,
        kind="reply",
        subject=f"inbound:{inbound_id}",
        customer_phone=phone,
        made_at=made_at,
        due_at=made_at + REPLY_WITHIN,
    )


async def stats(principal: Principal, business_id: UUID) -> dict[str, Any]:
    """Promises kept, broken and open per kind, and the kept rate of the settled ones."""
    principal.require("bookings:read", business_id)
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT kind, status, count(*) AS n FROM promise WHERE business_id = $1 "
            "GROUP BY kind, status",
            business_id,
        )
    by_kind: dict[str, dict[str, int]] = {
        kind: {"kept": 0, "broken": 0, "open": 0} for kind in KINDS
    }
    for row in rows:
        if row["status"] in by_kind[row["kind"]]:  # withdrawn (erasure): neither
            by_kind[row["kind"]][row["status"]] = row["n"]
    kept = sum(v["kept"] for v in by_kind.values())
    broken = sum(v["broken"] for v in by_kind.values())
    open_ = sum(v["open"] for v in by_kind.values())
    return {
        "business_id": business_id,
        "kept": kept,
        "broken": broken,
        "open": open_,
        "kept_rate": round(kept / (kept + broken), 4) if kept + broken else None,
        "by_kind": by_kind,
        "as_of": datetime.now(UTC),
    }
