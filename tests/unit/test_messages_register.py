"""Item 6 of issue 14: one register in every Italian SMS (the informal "tu"), and the
offer's hold time that grows with how far off the appointment is."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

import booking.guarantee.messages
import booking.journey.wording
from booking.guarantee.offers import offer_lifetime
from booking.journey.wording import DEFAULT_REQUEST
from booking.notifications import templates
from booking.selfservice.i18n import TEXT as PAGE_TEXT
from booking.selfservice.journey_view import WORDS as PAGE_JOURNEY_WORDS

# Forms of the formal "Lei" addressed to the customer (or "voi" to the staff).
FORMAL = re.compile(
    r"\b(la preghiamo|le chiediamo|le ricordiamo|le teniamo|ci scusi|risponda|scelga|"
    r"gestisca|apra|tocchi|accetta\b\.|riceverla|per lei|sua|suo|sue|suoi|avrà|"
    r"chiamate|rispondete)\b",
    re.IGNORECASE,
)


def italian_texts() -> dict[str, str]:
    assert booking.guarantee.messages  # imported: their templates are registered
    assert booking.journey.wording
    texts = {key: templates._TEMPLATES[key].get("it", "") for key in templates.template_keys()}
    texts["feedback_request (built-in)"] = DEFAULT_REQUEST["it"]
    return texts


def test_every_template_has_an_italian_text_in_the_informal_register() -> None:
    texts = italian_texts()
    assert len(texts) >= 25  # the notifications', guarantee's and journey's templates
    missing = [key for key, text in texts.items() if not text]
    assert missing == []
    formal = {key: FORMAL.findall(text) for key, text in texts.items() if FORMAL.search(text)}
    assert formal == {}
    # and the check does catch the old wording
    assert FORMAL.search("ci scusi, non potrà riceverla. Risponda 1, 2 o 3; la Sua prenotazione")


# The page's own formal forms (imperatives and "Lei" verbs a SMS never used), and "voi"
# from the customer to the business ("Avvisatemi").
PAGE_FORMAL = re.compile(
    r"\b(lei|contatti|usi|riapra|riprovi|provi|ci ha dato|è in lista|la avviseremo|"
    r"avvisatemi)\b",
    re.IGNORECASE,
)


def test_the_self_service_page_speaks_italian_in_the_same_register() -> None:
    texts = {**PAGE_TEXT["it"], **PAGE_JOURNEY_WORDS["it"]}
    formal = {
        key: FORMAL.findall(text) + PAGE_FORMAL.findall(text)
        for key, text in texts.items()
        if FORMAL.search(text) or PAGE_FORMAL.search(text)
    }
    assert formal == {}
    assert PAGE_FORMAL.search("Usi il link o ci contatti; La avviseremo. Riapra e riprovi.")
    # {until} is a day and a time ("lun 30 nov alle 14:30"), as in the offer SMS
    assert all("alle {until}" not in text for text in texts.values())


def test_offer_sms_give_the_day_of_the_hold_end_and_pending_says_by_when() -> None:
    for key in ("offer_lost_slot", "waitlist_offer"):
        for locale in ("it", "en"):
            text = templates._TEMPLATES[key][locale]
            assert "{until}" in text
            assert "alle {until}" not in text  # {until} is a day and time now
    for locale in ("it", "en"):
        assert "{due}" in templates._TEMPLATES["booking_pending"][locale]


NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ahead", "hours"),
    [
        (timedelta(hours=3), 2),  # later today: 2 h (and never past the start)
        (timedelta(days=1), 2),  # tomorrow
        (timedelta(days=1, hours=23), 2),
        (timedelta(days=2), 6),
        (timedelta(days=3, hours=23), 6),
        (timedelta(days=4), 12),
        (timedelta(days=6, hours=23), 12),
        (timedelta(days=7), 24),  # a week out
        (timedelta(days=30), 24),
    ],
)
def test_an_offer_holds_longer_the_further_off_the_appointment(
    ahead: timedelta, hours: int
) -> None:
    assert offer_lifetime(NOW, NOW + ahead) == timedelta(hours=hours)
