"""SMS texts of the guarantee, registered with the notifications templates at import.

Booking templates get name, business, service, staff, when, reference and link
(see :func:`booking.notifications.service.booking_context`); the extra values
each one needs are named in its text. ``{until}`` is the day and time the held times
are released (``mar 2 dic alle 14:30``), in the business's zone. Italian texts use "tu".
"""

from __future__ import annotations

from booking.notifications.templates import register_template

register_template(
    "offer_lost_slot",
    {
        "en": (
            "{business}: sorry, {staff} cannot see you on {when}. We are holding new times "
            "for you until {until}: {options}. Reply 1, 2 or 3 to take one, or choose here: "
            "{link}"
        ),
        "it": (
            "{business}: ci dispiace, {staff} non potrà riceverti {when}. Ti teniamo da "
            "parte nuovi orari fino a {until}: {options}. Rispondi 1, 2 o 3 per sceglierne "
            "uno, oppure scegli qui: {link}"
        ),
    },
)
register_template(
    "offer_class_cancelled",
    {
        "en": (
            "{business}: sorry, the {service} class on {when} is cancelled. We are holding "
            "{places} for you in the next classes until {until}: {options}. Reply 1, 2 or 3 "
            "to take one, or choose here: {link}"
        ),
        "it": (
            "{business}: ci dispiace, la lezione di {service} {when} è annullata. Ti teniamo "
            "{places} nelle prossime lezioni fino a {until}: {options}. Rispondi 1, 2 o 3 "
            "per sceglierne una, oppure scegli qui: {link}"
        ),
    },
)


register_template(
    "class_cancelled_no_room",
    {
        "en": (
            "{business}: sorry, the {service} class on {when} is cancelled and no other "
            "class has room for you right now. We will call you; you can also cancel or "
            "check here: {link}"
        ),
        "it": (
            "{business}: ci dispiace, la lezione di {service} {when} è annullata e al "
            "momento nessun'altra lezione ha posto per te. Ti chiamiamo noi; puoi anche "
            "annullare o controllare qui: {link}"
        ),
    },
)


def places(seats: int, locale: str) -> str:
    """ "1 seat" / "3 seats" ("1 posto" / "3 posti"): the party whose seats are held."""
    if locale == "it":
        return f"{seats} posto" if seats == 1 else f"{seats} posti"
    return f"{seats} seat" if seats == 1 else f"{seats} seats"


register_template(
    "offer_expired_customer",
    {
        "en": (
            "{business}: the times we held for you have been released. Your booking on {when} "
            "cannot go ahead as planned; pick any free time here: {link}"
        ),
        "it": (
            "{business}: gli orari tenuti per te sono stati rilasciati. La tua prenotazione "
            "di {when} non può restare così; scegli un orario libero qui: {link}"
        ),
    },
)
register_template(
    "offer_expired_business",
    {
        "en": (
            "{business}: no answer to the reschedule offer for booking {reference} "
            "({when}, {service}); the held times are released. Please call the customer."
        ),
        "it": (
            "{business}: nessuna risposta alla proposta di spostamento per la prenotazione "
            "{reference} ({when}, {service}); orari rilasciati. Chiama il cliente."
        ),
    },
)
register_template(
    "waitlist_offer",
    {
        "en": (
            "{business}: an earlier time is free, {offered} ({service}). It is yours if you "
            "reply 1 by {until}, or tap {link}. Your booking on {when} stays until you accept."
        ),
        "it": (
            "{business}: si è liberato un orario prima, {offered} ({service}). È tuo se "
            "rispondi 1 entro {until}, o tocca {link}. La tua prenotazione di {when} resta "
            "finché non accetti."
        ),
    },
)
register_template(
    "offer_reply_nothing_open",
    {
        "en": "There is no open offer to accept. Manage your booking from the link we sent.",
        "it": "Non ci sono proposte aperte da accettare. Gestisci la prenotazione dal link.",
    },
)
register_template(
    "offer_reply_refused",
    {
        "en": "Sorry, that time is no longer available. Open the link we sent to choose again.",
        "it": "Ci dispiace, quell'orario non è più disponibile. Apri il link per scegliere ancora.",
    },
)
register_template(
    "promise_update_confirmation",
    {
        "en": (
            "{business}: we are working on your request for {service} on {when}; you will "
            "hear from us by {due}. Ref {reference}. {link}"
        ),
        "it": (
            "{business}: stiamo lavorando alla tua richiesta per {service} {when}; avrai "
            "una risposta entro {due}. Codice {reference}. {link}"
        ),
    },
)
register_template(
    "promise_update_offer",
    {
        "en": (
            "{business}: a reminder that we are holding new times for you until {due}. "
            "Reply 1, 2 or 3, or choose here: {link}"
        ),
        "it": (
            "{business}: ti ricordiamo che teniamo da parte nuovi orari fino a {due}. "
            "Rispondi 1, 2 o 3, oppure scegli qui: {link}"
        ),
    },
)
register_template(
    "promise_update_reply",
    {
        "en": "{business}: we have your message and are working on it; we will answer by {due}.",
        "it": (
            "{business}: abbiamo il tuo messaggio e ce ne stiamo occupando; ti rispondiamo "
            "entro {due}."
        ),
    },
)
register_template(
    "promise_alert_staff",
    {
        "en": (
            "{business}: promise at risk - {what}{for_booking} is due by {due} and nothing "
            "has happened yet."
        ),
        "it": (
            "{business}: promessa a rischio - {what}{for_booking} scade {due} e non è "
            "ancora successo nulla."
        ),
    },
)
