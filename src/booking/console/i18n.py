"""The consoles' words in Italian and English (English is the fallback). A console adds
its own table and reads both with :func:`words`."""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("it", "en")

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "sign_in_title": "Staff sign-in",
        "sign_in_hint": "Enter the sign-in code your manager gave you.",
        "code": "Sign-in code",
        "sign_in": "Sign in",
        "sign_in_refused": "That code is not valid: it may be used already, expired or "
        "mistyped. Ask your manager for a new one.",
        "signed_out": "You are signed out.",
        "sign_out": "Sign out",
        "csrf_refused": "This form was out of date or came from another page. Reload the page "
        "and try again; nothing was changed.",
        "refused_title": "Not done",
        "back": "Back to the desk",
        "language": "Italiano",
        "skip": "Skip to the content",
        "signed_in_as": "Signed in as",
    },
    "it": {
        "sign_in_title": "Accesso personale",
        "sign_in_hint": "Inserisci il codice di accesso che ti ha dato il responsabile.",
        "code": "Codice di accesso",
        "sign_in": "Accedi",
        "sign_in_refused": "Il codice non è valido: forse è già stato usato, è scaduto o "
        "contiene un errore. Chiedi un nuovo codice al responsabile.",
        "signed_out": "Sei uscito.",
        "sign_out": "Esci",
        "csrf_refused": "Il modulo era scaduto o veniva da un'altra pagina. Ricarica la "
        "pagina e riprova; non è stato cambiato nulla.",
        "refused_title": "Non eseguito",
        "back": "Torna al banco",
        "language": "English",
        "skip": "Vai al contenuto",
        "signed_in_as": "Accesso come",
    },
}


def pick_language(*candidates: str | None) -> str:
    for candidate in candidates:
        if candidate:
            short = candidate.lower()[:2]
            if short in LANGUAGES:
                return short
    return "en"


def words(lang: str, *extra: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    chosen = lang if lang in LANGUAGES else "en"
    merged = dict(TEXT[chosen])
    for table in extra:
        merged.update(table.get(chosen, table["en"]))
    return merged
