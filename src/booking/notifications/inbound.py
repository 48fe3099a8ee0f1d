"""Inbound SMS: record every reply, honour STOP/START/HELP, confirm by keyword.

Keywords are matched on the whole message, case- and accent-insensitively
("Sì!" is SI). Twilio's own opt-out keywords (STOP, START, HELP and friends)
are answered by Twilio itself, so we only record their effect; the Italian
ones Twilio does not know get our reply. YES is a Twilio opt-in keyword *and*
our English confirmation keyword: it does both. CANCEL is a Twilio opt-out
keyword, which is why no keyword cancels a booking (the link does).
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from booking import db
from booking.access.principal import Principal
from booking.bookings.transitions import transition
from booking.errors import DomainError
from booking.notifications.templates import render

log = logging.getLogger("booking.notifications")

Keyword = Literal["stop", "start", "help", "confirm"]

# Twilio's default opt-out management (it replies to these itself).
TWILIO_KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(
        ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"), "stop"
    ),
    **dict.fromkeys(("START", "UNSTOP"), "start"),
    **dict.fromkeys(("HELP", "INFO"), "help"),
}
# Ours, answered by us.
OUR_KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(("BASTA", "DISISCRIVI", "DISISCRIVIMI", "CANCELLAMI"), "stop"),
    **dict.fromkeys(("INIZIA", "RIATTIVA", "ISCRIVIMI"), "start"),
    **dict.fromkeys(("AIUTO",), "help"),
    **dict.fromkeys(("YES", "SI", "CONFERMA", "CONFERMO", "CONFIRM"), "confirm"),
}
SMS_REPLY_PRINCIPAL = Principal(kind="system", id="sms-reply")


def normalize_keyword(body: str) -> str:
    decomposed = unicodedata.normalize("NFKD", body)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return plain.strip().strip(".!?'\"` \u00b4").upper()


def classify(body: str) -> tuple[Keyword | None, bool]:
    """(keyword, whether Twilio answers it itself)."""
    word = normalize_keyword(body)
    if word in TWILIO_KEYWORDS:
        return TWILIO_KEYWORDS[word], True
    return OUR_KEYWORDS.get(word), False


@dataclass(frozen=True, slots=True)
class InboundResult:
    keyword: Keyword | None
    outcome: str
    reply: str | None = None
    booking_id: UUID | None = None


async def _locale_for(phone: str) -> str:
    async with db.connection() as conn:
        locale = await conn.fetchval(
            "SELECT locale FROM customer WHERE phone = $1 ORDER BY created_at DESC LIMIT 1", phone
        )
    if locale:
        return str(locale)
    return "it" if phone.startswith("+39") else "en"


async def _set_consent(phone: str, consent: bool) -> int:
    async with db.transaction() as conn:
        result: str = await conn.execute(
            "UPDATE customer SET sms_consent = $2 WHERE phone = $1", phone, consent
        )
    return int(result.split()[-1])


async def _confirm_pending(phone: str) -> tuple[str, UUID | None]:
    async with db.connection() as conn:
        booking_id: UUID | None = await conn.fetchval(
            """
            SELECT b.id FROM booking b JOIN customer c ON c.id = b.customer_id
            WHERE c.phone = $1 AND b.status = 'pending' AND b.starts_at > now()
            ORDER BY b.starts_at LIMIT 1
            """,
            phone,
        )
    if booking_id is None:
        return "nothing to confirm", None
    try:
        await transition(SMS_REPLY_PRINCIPAL, booking_id, "confirm", reason="confirmed by SMS")
    except DomainError as exc:
        return f"confirm refused: {exc.code}", booking_id
    return "confirmed", booking_id


# (inbound id, sender, body) -> (outcome, booking id, reply template key or None)
UnmatchedSms = Callable[[int, str, str], Awaitable[tuple[str, UUID | None, str | None]]]


async def handle_inbound(
    sid: str, from_phone: str, to_phone: str, body: str, *, on_unmatched: UnmatchedSms
) -> InboundResult:
    """Act on one inbound SMS exactly once per Twilio sid; the TwiML reply text, if any.

    ``on_unmatched`` handles a message that is no keyword (the app passes the
    guarantee's :func:`booking.guarantee.sms_reply.on_unmatched_sms`: offer replies and
    owed answers); passed in, as notifications must not import the guarantee above it.
    """
    keyword, twilio_answers = classify(body)
    async with db.transaction() as conn:
        inbound_id = await conn.fetchval(
            """
            INSERT INTO inbound_message (provider_sid, from_phone, to_phone, body, keyword)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (provider_sid) DO NOTHING RETURNING id
            """,
            sid,
            from_phone,
            to_phone,
            body[:2000],
            keyword,
        )
    if inbound_id is None:
        return InboundResult(keyword, "duplicate")  # Twilio retried: already handled
    locale = await _locale_for(from_phone)
    reply_key: str | None = None
    booking_id: UUID | None = None
    if keyword == "stop":
        outcome = f"opted out ({await _set_consent(from_phone, False)} customers)"
        reply_key = "reply_stopped"
    elif keyword == "start":
        outcome = f"opted in ({await _set_consent(from_phone, True)} customers)"
        reply_key = "reply_started"
    elif keyword == "help":
        outcome = "help"
        reply_key = "reply_help"
    elif keyword == "confirm":
        if normalize_keyword(body) == "YES":
            await _set_consent(from_phone, True)  # Twilio treats YES as opt-in too
        outcome, booking_id = await _confirm_pending(from_phone)
        # A confirmed booking gets its confirmation SMS through the outbox.
        reply_key = "reply_nothing_to_confirm" if booking_id is None else None
    else:
        # The guarantee: "1"/"2"/"3" accepts the sender's open reschedule offer; any
        # other text is recorded as a reply the business owes (a promise it watches).
        outcome, booking_id, reply_key = await on_unmatched(inbound_id, from_phone, body)
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE inbound_message SET outcome = $2, booking_id = $3 WHERE id = $1",
            inbound_id,
            outcome,
            booking_id,
        )
    reply = None if reply_key is None or twilio_answers else render(reply_key, locale, {})
    return InboundResult(keyword, outcome, reply, booking_id)
