"""The guarantee's outbox handler: committed events in, rows and SMS out (idempotent).

* ``offer.created`` -> the customer's SMS listing the options and the link (for a seat
  in a cancelled class, the next classes where the party's seats are held).
* ``offer.expired`` (lost slot) -> the customer's final message with a link to pick
  any free time, and an alert to the business's on-duty phone.
* ``booking.created`` (pending) -> a confirmation promise.
* ``booking.changed`` / ``booking.cancelled`` -> a lost slot the customer resolved
  themselves stops being at risk (its held alternatives are released), and the
  freed time goes down the earlier-slot waitlist.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from booking.guarantee import events, messages, offers, promises, waitlist
from booking.notifications.service import queue_sms
from booking.notifications.templates import format_when
from booking.outbox.dispatch import FollowUpJob, OutboxEvent

log = logging.getLogger("booking.guarantee")
assert messages  # the SMS templates are registered on import

_OFFER_SMS_CONTEXT = """
    SELECT b.id, b.business_id, b.status, b.session_id, b.seats, biz.time_zone,
           biz.on_duty_phone,
           biz.locale AS business_locale, c.locale AS customer_locale
    FROM booking b JOIN business biz ON biz.id = b.business_id
    LEFT JOIN customer c ON c.id = b.customer_id
    WHERE b.id = $1
"""


async def _options_text(
    conn: asyncpg.Connection, offer_id: UUID, time_zone: str, locale: str
) -> tuple[str, list[dict[str, Any]]]:
    rows = await conn.fetch(
        "SELECT o.position, o.starts_at, st.name, r.name AS resource_name "
        "FROM reschedule_option o JOIN staff st ON st.id = o.staff_id "
        "LEFT JOIN resource r ON r.business_id = o.business_id AND r.id = o.resource_id "
        "WHERE o.offer_id = $1 ORDER BY o.position",
        offer_id,
    )
    parts = [
        f"{row['position']}) {format_when(row['starts_at'], time_zone, locale)} "
        f"({row['name']}{', ' + row['resource_name'] if row['resource_name'] else ''})"
        for row in rows
    ]
    return "; ".join(parts), [dict(row) for row in rows]


async def _on_offer_created(conn: asyncpg.Connection, event: OutboxEvent) -> list[FollowUpJob]:
    offer_id = UUID(str(event.payload["offer_id"]))
    row = await conn.fetchrow(_OFFER_SMS_CONTEXT, event.aggregate_id)
    if row is None:
        return []
    locale = row["customer_locale"] or row["business_locale"] or "en"
    text, options = await _options_text(conn, offer_id, row["time_zone"], locale)
    if not options:
        return []
    expires_at = datetime.fromisoformat(str(event.payload["expires_at"]))
    until = format_when(expires_at, row["time_zone"], locale)  # the day too, not only the hour
    if event.payload.get("kind") == "earlier_slot":
        template = "waitlist_offer"
        context = {
            "offered": format_when(options[0]["starts_at"], row["time_zone"], locale),
            "until": until,
        }
    elif row["session_id"] is not None:
        template = "offer_class_cancelled"
        context = {"options": text, "until": until, "places": messages.places(row["seats"], locale)}
    else:
        template = "offer_lost_slot"
        context = {"options": text, "until": until}
    job = await queue_sms(
        conn,
        booking_id=row["id"],
        template=template,
        context=context,
        dedupe_key=f"offer:{offer_id}:created",
        outbox_id=event.id,
    )
    return [job] if job is not None else []


async def _on_offer_expired(conn: asyncpg.Connection, event: OutboxEvent) -> list[FollowUpJob]:
    if event.payload.get("kind") != "lost_slot":
        return []  # an earlier-slot offer just moves on to the next customer
    offer_id = event.payload["offer_id"]
    row = await conn.fetchrow(_OFFER_SMS_CONTEXT, event.aggregate_id)
    if row is None or row["status"] not in ("pending", "confirmed"):
        return []
    # A cancelled class with no other class that has room: nothing was ever held.
    nothing_held = row["session_id"] is not None and event.payload.get("options") == []
    jobs: list[FollowUpJob | None] = [
        await queue_sms(
            conn,
            booking_id=row["id"],
            template="class_cancelled_no_room" if nothing_held else "offer_expired_customer",
            dedupe_key=f"offer:{offer_id}:expired:customer",
            outbox_id=event.id,
        )
    ]
    if row["on_duty_phone"]:
        jobs.append(
            await queue_sms(
                conn,
                booking_id=row["id"],
                to=row["on_duty_phone"],
                locale=row["business_locale"],
                template="offer_expired_business",
                dedupe_key=f"offer:{offer_id}:expired:business",
                outbox_id=event.id,
            )
        )
    else:
        log.warning(
            "business %s has no on-duty phone: offer %s expired", row["business_id"], offer_id
        )
    return [job for job in jobs if job is not None]


async def _still_lost(conn: asyncpg.Connection, booking_id: UUID) -> bool:
    """Whether the booking's current placement still cannot be honoured."""
    return bool(
        await conn.fetchval(
            f"SELECT {offers.STILL_LOST} FROM booking b WHERE b.id = $1", booking_id
        )
    )


async def _on_booking_moved(conn: asyncpg.Connection, event: OutboxEvent) -> None:
    # No write to the booking row here: the SMS handler holds it FOR SHARE in this same
    # transaction, and upgrading that lock can deadlock with another event of the booking.
    booking_id = event.aggregate_id
    if booking_id is None:
        return
    if event.topic == "booking.cancelled" or not await _still_lost(conn, booking_id):
        await offers.withdraw_open_offer(conn, booking_id, f"booking {event.topic.split('.')[1]}")
    if event.topic == "booking.cancelled":
        await conn.execute(
            "UPDATE waitlist_entry SET status = 'cancelled', closed_at = now() "
            "WHERE booking_id = $1 AND status = 'waiting'",
            booking_id,
        )
    await waitlist.on_booking_freed(conn, event)


async def on_event(conn: asyncpg.Connection, event: OutboxEvent) -> list[FollowUpJob]:
    if event.topic == events.OFFER_CREATED:
        return await _on_offer_created(conn, event)
    if event.topic == events.OFFER_EXPIRED:
        return await _on_offer_expired(conn, event)
    if event.topic == "booking.created" and event.payload.get("status") == "pending":
        if event.aggregate_id is not None:
            await promises.record_pending_confirmation(conn, event.aggregate_id, event.created_at)
        return []
    if event.topic in ("booking.changed", "booking.cancelled"):
        await _on_booking_moved(conn, event)
    return []
