"""The feedback SMS texts: built-in Italian and English, or the business's own wording.

A business may set ``business.feedback_wording`` to ``{"it": "...", "en": "..."}``; each
text may use ``{business}``, ``{name}`` (the customer's first name), ``{service}`` and
``{link}`` (the booking's page, where the form is). A locale the business did not word
gets the built-in text. Italian texts use the informal "tu", as every Italian template
does (docs/messages.md).
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from typing import Any

from booking.notifications.templates import register_template

REQUEST_TEMPLATE = "feedback_request"
ALERT_TEMPLATE = "feedback_alert_staff"
PLACEHOLDERS = frozenset({"business", "name", "service", "link"})

DEFAULT_REQUEST = {
    "en": (
        "{business}: thank you for coming, {name}. How was your {service}? Reply with a "
        "score from 1 (bad) to 5 (great) and, if you like, a comment. Or answer here: {link}"
    ),
    "it": (
        "{business}: grazie della visita, {name}. Com'è andato il tuo {service}? Rispondi "
        "con un voto da 1 (male) a 5 (benissimo) e, se vuoi, un commento. Oppure qui: {link}"
    ),
}

# The question is rendered here (built-in or the business's wording) and sent as is.
register_template(REQUEST_TEMPLATE, {"en": "{text}", "it": "{text}"})
register_template(
    ALERT_TEMPLATE,
    {
        "en": (
            "{business}: low score {score}/5 for booking {reference} ({customer} {phone}): "
            '"{comment}". Call them back by {due}.'
        ),
        "it": (
            "{business}: voto basso {score}/5 per la prenotazione {reference} ({customer} "
            '{phone}): "{comment}". Da richiamare entro {due}.'
        ),
    },
)
register_template(
    "feedback_thanks",
    {
        "en": "Thank you for your feedback!",
        "it": "Grazie del tuo giudizio!",
    },
)
register_template(
    "promise_update_callback",
    {
        "en": "{business}: thank you for telling us. We will call you by {due}. Ref {reference}.",
        "it": (
            "{business}: grazie di avercelo detto. Ti chiameremo entro {due}. Codice {reference}."
        ),
    },
)


def check_wording(texts: Mapping[str, Any]) -> list[str]:
    """What is wrong with a business's wording (empty: nothing)."""
    problems: list[str] = []
    for locale, text in texts.items():
        if not isinstance(text, str) or not 1 <= len(text) <= 600:
            problems.append(f"{locale}: a text of 1 to 600 characters")
            continue
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(text) if name}
        except ValueError as exc:
            problems.append(f"{locale}: {exc}")
            continue
        if names - PLACEHOLDERS:
            problems.append(f"{locale}: unknown placeholders {sorted(names - PLACEHOLDERS)}")
    return problems


def feedback_request(wording: Any, locale: str, values: Mapping[str, Any]) -> str:
    """The question in ``locale``: the business's text when it has a valid one."""
    if isinstance(wording, str):  # jsonb arrives as text
        wording = json.loads(wording)
    custom = wording if isinstance(wording, Mapping) else {}
    text = custom.get(locale)
    if not isinstance(text, str) or check_wording({locale: text}):
        text = DEFAULT_REQUEST.get(locale) or DEFAULT_REQUEST["en"]
    return text.format_map(dict(values))
