"""The desk's words in Italian and English, read with :func:`booking.console.i18n.words`."""

from __future__ import annotations

DESK: dict[str, dict[str, str]] = {
    "en": {
        "desk_title": "Front desk",
        "nav_find": "Find",
        "nav_day": "Day",
        "search_label": "Reference, phone or name",
        "search_hint": "Press / to search from anywhere.",
        "search_go": "Find",
        "no_results": "Nothing found.",
    },
    "it": {
        "desk_title": "Banco",
        "nav_find": "Cerca",
        "nav_day": "Giornata",
        "search_label": "Codice, telefono o nome",
        "search_hint": "Premi / per cercare da qualsiasi punto.",
        "search_go": "Cerca",
        "no_results": "Nessun risultato.",
    },
}
