"""Inbound SMS that are no keyword, with feedback first: the app's ``on_unmatched_sms``.

STOP, START, HELP and YES never get here (booking/notifications/inbound.py answers them
first, so STOP still opts out even while a question is open). A reply that starts with a
score ("5", "4 grazie!") answers the sender's open feedback question, unless it is a
"1"-"3" and the sender has an open reschedule offer: the offer is the time-critical one.
Everything else goes on to the guarantee (offer replies, replies the business owes).
"""

from __future__ import annotations

from uuid import UUID

from booking import db
from booking.guarantee import sms_reply
from booking.journey import feedback


async def _has_open_offer(phone: str) -> bool:
    async with db.connection() as conn:
        return bool(
            await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM reschedule_offer o "
                "JOIN booking b ON b.business_id = o.business_id AND b.id = o.booking_id "
                "JOIN customer c ON c.business_id = b.business_id AND c.id = b.customer_id "
                "WHERE c.phone = $1 AND o.status = 'open' AND o.expires_at > now())",
                phone,
            )
        )


async def on_unmatched_sms(
    inbound_id: int, from_phone: str, body: str
) -> tuple[str, UUID | None, str | None]:
    """(outcome, booking id, reply template or None), as the inbound handler expects."""
    if sms_reply.offer_digit(body) is None or not await _has_open_offer(from_phone):
        answered = await feedback.record_sms_reply(from_phone, body)
        if answered is not None:
            return answered[0], answered[1], "feedback_thanks"
    return await sms_reply.on_unmatched_sms(inbound_id, from_phone, body)
