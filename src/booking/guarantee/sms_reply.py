"""Inbound SMS the keyword handler does not claim: offer replies and owed answers.

Handed to :func:`booking.notifications.inbound.handle_inbound` (by the app, as
``app.state.on_unmatched_sms``: notifications sits below the guarantee and does not
import it) for a message that is not a keyword. "1", "2" or "3" accepts that option
of the sender's open offer (the same atomic path as the link); anything else records
that the business owes the sender an answer (a ``reply`` promise, watched like every other).
"""

from __future__ import annotations

from uuid import UUID

from booking import db
from booking.access.principal import booking_customer
from booking.errors import DomainError
from booking.guarantee import accept, messages, promises

DIGITS = ("1", "2", "3")
assert messages  # the reply templates are registered on import


def offer_digit(body: str) -> int | None:
    word = body.strip().strip(".!)").strip()
    return int(word) if word in DIGITS else None


async def on_unmatched_sms(
    inbound_id: int, from_phone: str, body: str
) -> tuple[str, UUID | None, str | None]:
    """(outcome, booking id, reply template or None) for a non-keyword inbound SMS."""
    digit = offer_digit(body)
    if digit is None:
        async with db.transaction() as conn:
            made_at = await conn.fetchval("SELECT now()")
            promise = await promises.record_reply_owed(conn, inbound_id, from_phone, made_at)
        return ("recorded; reply owed" if promise else "recorded"), None, None
    async with db.connection() as conn:
        row = await conn.fetchrow(
            """
            SELECT o.id, o.booking_id, b.business_id
            FROM reschedule_offer o JOIN booking b ON b.id = o.booking_id
            JOIN customer c ON c.id = b.customer_id
            WHERE c.phone = $1 AND o.status = 'open' AND o.expires_at > now()
            ORDER BY o.expires_at LIMIT 1
            """,
            from_phone,
        )
    if row is None:
        return "no open offer", None, "offer_reply_nothing_open"
    who = booking_customer(row["booking_id"], row["business_id"])
    try:
        await accept.accept_offer(who, row["id"], digit, channel="sms")
    except DomainError as exc:
        return f"offer refused: {exc.code}", row["booking_id"], "offer_reply_refused"
    # The booking.changed SMS confirms the new time through the outbox.
    return f"offer accepted: option {digit}", row["booking_id"], None
