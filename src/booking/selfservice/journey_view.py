"""The customer's own journey on their booking page: the friendly subset of the timeline
(:func:`booking.journey.timeline.booking_journey` read as the booking's customer), each
touchpoint said in plain words, newest last.

SMS steps are shown once per message (sent; "delivered" when Twilio said so), not as
queued/sent/delivered triples; staff alerts, webhooks, promises and key labels never reach
this list (the timeline's customer audience already leaves them out).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from booking.access.principal import booking_customer
from booking.journey.timeline import booking_journey
from booking.notifications.templates import format_when

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "booking.created": "Booking made",
        "hold.used": "Booking made",
        "booking.confirmed": "Booking confirmed",
        "booking.changed": "Booking moved",
        "booking.cancelled": "Booking cancelled",
        "booking.checked_in": "You arrived",
        "booking.completed": "Visit completed",
        "booking.no_show": "Marked as missed",
        "offer.made": "We offered you new times",
        "offer.accepted": "You chose a new time",
        "offer.expired": "The times we held were released",
        "waitlist.joined": "You asked for an earlier time",
        "waitlist.offer_made": "An earlier time was offered",
        "waitlist.offer_accepted": "You took the earlier time",
        "feedback.requested": "We asked how it went",
        "feedback.received": "You gave a score",
        "sms": "Message sent to you",
        "reminder": "Reminder sent to you",
        "delivered": "delivered",
        "by_you": "by you",
        "by_us": "by us",
    },
    "it": {
        "booking.created": "Prenotazione fatta",
        "hold.used": "Prenotazione fatta",
        "booking.confirmed": "Prenotazione confermata",
        "booking.changed": "Prenotazione spostata",
        "booking.cancelled": "Prenotazione annullata",
        "booking.checked_in": "Sei arrivato",
        "booking.completed": "Visita conclusa",
        "booking.no_show": "Segnata come mancata",
        "offer.made": "Ti abbiamo proposto nuovi orari",
        "offer.accepted": "Hai scelto un nuovo orario",
        "offer.expired": "Gli orari tenuti per te sono stati rilasciati",
        "waitlist.joined": "Hai chiesto un orario prima",
        "waitlist.offer_made": "Ti abbiamo proposto un orario prima",
        "waitlist.offer_accepted": "Hai preso l'orario prima",
        "feedback.requested": "Ti abbiamo chiesto com'è andata",
        "feedback.received": "Hai dato un voto",
        "sms": "Messaggio inviato a te",
        "reminder": "Promemoria inviato a te",
        "delivered": "consegnato",
        "by_you": "da te",
        "by_us": "da noi",
    },
}


async def customer_journey(booking_id: UUID, business_id: UUID, lang: str) -> list[dict[str, Any]]:
    journey = await booking_journey(booking_customer(booking_id, business_id), booking_id)
    w = WORDS.get(lang, WORDS["en"])
    shown: list[dict[str, Any]] = []
    awaiting: dict[str, list[dict[str, Any]]] = {}  # sent, not yet delivered, by template
    for entry in journey.entries:
        kind, _, step = entry.touchpoint.partition(".")
        template = str(entry.detail.get("template") or kind)
        if kind in ("sms", "reminder") and step == "delivered":
            if awaiting.get(template):
                awaiting[template].pop(0)["delivered"] = w["delivered"]
            continue
        if kind in ("sms", "reminder"):
            what = w[kind]
        elif entry.touchpoint in w:
            what = w[entry.touchpoint]
        else:
            continue
        score = entry.detail.get("score")
        item = {
            "touchpoint": entry.touchpoint,
            "when": format_when(entry.at, journey.time_zone, lang),
            "what": what if score is None else f"{what}: {score}/5",
            "who": w["by_you"] if entry.actor.type == "customer" else w["by_us"],
            "delivered": "",
        }
        if kind in ("sms", "reminder"):
            awaiting.setdefault(template, []).append(item)
        shown.append(item)
    return shown
