"""SMS templates in the customer's language, and the wording of dates.

A template is a ``str.format`` pattern per locale; English is the fallback for
a locale a template lacks. Other features add their own with
:func:`register_template` (at import time of their module). Italian texts speak to the
customer with the informal "tu" everywhere (tests/unit/test_messages_register.py checks
every registered template).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

FALLBACK_LOCALE = "en"

_TEMPLATES: dict[str, dict[str, str]] = {}


class TemplateError(ValueError):
    """A template is unknown, malformed, or lacks a value it needs (a programming error)."""


def register_template(key: str, texts: Mapping[str, str]) -> None:
    """Add (or replace) the template ``key``: ``{"en": "...", "it": "..."}``.

    English is required; placeholders are ``str.format`` names, e.g. ``{when}``.
    Every booking message can use: name, business, service, staff, when,
    reference, link (see :func:`booking.notifications.service.booking_context`).
    """
    if FALLBACK_LOCALE not in texts:
        raise TemplateError(f"template {key!r} needs an {FALLBACK_LOCALE!r} text")
    for locale, text in texts.items():
        try:
            list(string.Formatter().parse(text))
        except ValueError as exc:
            raise TemplateError(f"template {key!r} ({locale}) is malformed: {exc}") from exc
    _TEMPLATES[key] = dict(texts)


def template_keys() -> list[str]:
    return sorted(_TEMPLATES)


def render(key: str, locale: str, context: Mapping[str, Any]) -> str:
    texts = _TEMPLATES.get(key)
    if texts is None:
        raise TemplateError(f"unknown SMS template {key!r}")
    text = texts.get(locale) or texts[FALLBACK_LOCALE]
    try:
        return text.format_map(context)
    except (KeyError, IndexError) as exc:
        raise TemplateError(f"template {key!r} needs a value for {exc}") from exc


_WEEKDAYS = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "it": ("lun", "mar", "mer", "gio", "ven", "sab", "dom"),
}
_MONTHS = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "it": ("gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic"),
}
_AT = {"en": "at", "it": "alle"}


def format_when(moment: datetime, time_zone: str, locale: str) -> str:
    """``Tue 2 Dec at 14:30`` / ``mar 2 dic alle 14:30`` in the business's time zone."""
    lang = locale if locale in _WEEKDAYS else FALLBACK_LOCALE
    local = moment.astimezone(ZoneInfo(time_zone))
    weekday = _WEEKDAYS[lang][local.weekday()]
    month = _MONTHS[lang][local.month - 1]
    return f"{weekday} {local.day} {month} {_AT[lang]} {local:%H:%M}"


def format_day(day: date, locale: str) -> str:
    """``Tue 2 Dec`` / ``mar 2 dic``: a calendar day, as in :func:`format_when`."""
    lang = locale if locale in _WEEKDAYS else FALLBACK_LOCALE
    return f"{_WEEKDAYS[lang][day.weekday()]} {day.day} {_MONTHS[lang][day.month - 1]}"


# --------------------------------------------------------------------------- built-ins

register_template(
    "booking_confirmed",
    {
        "en": (
            "{business}: your booking is confirmed, {service} on {when} with {staff}. "
            "Ref {reference}. Manage it: {link}"
        ),
        "it": (
            "{business}: prenotazione confermata, {service} {when} con {staff}. "
            "Codice {reference}. Gestiscila qui: {link}"
        ),
    },
)
register_template(
    "booking_pending",
    {
        "en": (
            "{business}: we have your request for {service} on {when}; you will hear from "
            "us by {due}. Reply YES to confirm it. Ref {reference}. Manage it: {link}"
        ),
        "it": (
            "{business}: abbiamo ricevuto la tua richiesta per {service} {when}; ti "
            "rispondiamo entro {due}. Rispondi SI per confermarla. Codice {reference}. "
            "Gestiscila qui: {link}"
        ),
    },
)
register_template(
    "booking_changed",
    {
        "en": (
            "{business}: your booking {reference} has moved to {when} ({service} with {staff}). "
            "Manage it: {link}"
        ),
        "it": (
            "{business}: la tua prenotazione {reference} è stata spostata a {when} "
            "({service} con {staff}). Gestiscila qui: {link}"
        ),
    },
)
register_template(
    "class_booked",
    {
        "en": (
            "{business}: {seats} place(s) booked in the class {service} on {when} with "
            "{staff}. Ref {reference}. Manage it: {link}"
        ),
        "it": (
            "{business}: {seats} posto/i prenotato/i alla lezione di {service} {when} con "
            "{staff}. Codice {reference}. Gestiscila qui: {link}"
        ),
    },
)
register_template(
    "visit_booked",
    {
        "en": (
            "{business}: your visit of {segments} services on {when} is booked, starting "
            "with {service} with {staff}. Ref {reference}. Manage it: {link}"
        ),
        "it": (
            "{business}: la tua visita di {segments} servizi {when} è prenotata, si inizia "
            "con {service} con {staff}. Codice {reference}. Gestiscila qui: {link}"
        ),
    },
)
register_template(
    "series_booked",
    {
        "en": (
            "{business}: {count} appointments booked for {service}, the first on {when}. "
            "Each has its own reminder. Ref {reference}. Manage them: {link}"
        ),
        "it": (
            "{business}: {count} appuntamenti prenotati per {service}, il primo {when}. "
            "Per ognuno arriva un promemoria. Codice {reference}. Gestiscili qui: {link}"
        ),
    },
)
register_template(
    "booking_cancelled",
    {
        "en": "{business}: your booking {reference} for {when} is cancelled. Details: {link}",
        "it": (
            "{business}: la tua prenotazione {reference} di {when} è annullata. Dettagli: {link}"
        ),
    },
)
register_template(
    "reminder",
    {
        "en": ("{business}: reminder, {service} on {when} with {staff}. Change or cancel: {link}"),
        "it": (
            "{business}: promemoria, {service} {when} con {staff}. Per spostare o annullare: {link}"
        ),
    },
)
# Replies to inbound keywords Twilio itself does not answer (see inbound.py).
register_template(
    "reply_help",
    {
        "en": (
            "Booking messages. Reply YES to confirm a pending booking, STOP to stop "
            "messages, START to receive them again."
        ),
        "it": (
            "Messaggi sulle prenotazioni. Rispondi SI per confermare una prenotazione, "
            "STOP per non ricevere più SMS, START per riattivarli."
        ),
    },
)
register_template(
    "reply_stopped",
    {
        "en": "You will receive no more messages. Reply START to receive them again.",
        "it": "Non riceverai più messaggi. Rispondi START per riattivarli.",
    },
)
register_template(
    "reply_started",
    {
        "en": "Messages are on again. Reply STOP to stop them.",
        "it": "Messaggi riattivati. Rispondi STOP per disattivarli.",
    },
)
register_template(
    "reply_nothing_to_confirm",
    {
        "en": "There is no booking waiting for your confirmation.",
        "it": "Non ci sono prenotazioni in attesa di conferma.",
    },
)
