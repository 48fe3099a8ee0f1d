"""The page's words in Italian and English (English is the fallback)."""

from __future__ import annotations

LANGUAGES = ("it", "en")

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your booking",
        "service": "Service",
        "when": "When",
        "with": "With",
        "where": "Where",
        "reference": "Reference",
        "status": "Status",
        "confirm": "Confirm my booking",
        "cancel": "Cancel my booking",
        "cancel_sure": "Cancel this booking?",
        "change": "Change the time",
        "change_hint": "Free times you can move to:",
        "no_alternatives": "No free times in the next two weeks.",
        "change_closed": "This booking can no longer be moved online; please contact us.",
        "move_here": "Move here",
        "pick_day": "Day",
        "prev_day": "Previous day",
        "next_day": "Next day",
        "anyone": "Anyone",
        "show_times": "Show free times",
        "no_times_that_day": "No free times on this day: try another day or someone else.",
        "browse_day": "That is not a day we can show. Pick a day from the calendar.",
        "browse_day_range": "That day is outside the days you can book. Pick a day from the "
        "calendar.",
        "browse_staff": "That person does not offer this service. Pick someone from the list.",
        "offer_title": "Please choose a new time",
        "offer_hint": "Your time can no longer go ahead. We are holding these times for you "
        "until {until}:",
        "earlier_title": "An earlier time is free",
        "earlier_hint": "We are holding it for you until {until}:",
        "take": "Take this time",
        "at_risk": "Your appointment cannot go ahead as planned: please pick another time.",
        "waitlist": "Tell me if something earlier frees up",
        "waitlist_on": "You are on the list for an earlier time (until {latest}).",
        "calendar": "Add to calendar",
        "language": "Italiano",
        "done_confirm": "Your booking is confirmed.",
        "done_cancel": "Your booking is cancelled.",
        "done_change": "Your booking has moved.",
        "done_accept": "Done: your booking has moved to the time you chose.",
        "done_waitlist": "We will tell you if an earlier time frees up.",
        "done_feedback": "Thank you for your feedback!",
        "feedback_title": "How was your visit?",
        "journey_title": "What happened so far",
        "feedback_score": "Your score (1 bad, 5 great)",
        "feedback_comment": "A comment (optional)",
        "feedback_send": "Send",
        "feedback_given": "Thank you: you gave us {score}/5.",
        "refused_title": "This link cannot be used",
        "refused_forged": "This link is not valid. Please use the link from our latest message, "
        "or contact the business.",
        "refused_expired": "This link has expired. Please contact the business for a new one.",
        "refused_missing": "We cannot find this booking any more. Please contact the business.",
        "refused_form": "This form has expired or did not come from this page. Please open the "
        "link again and retry.",
        "problem": "That did not work",
        "status_pending": "waiting for confirmation",
        "status_confirmed": "confirmed",
        "status_checked_in": "checked in",
        "status_completed": "completed",
        "status_cancelled": "cancelled",
        "status_no_show": "missed",
        "status_expired": "expired",
        "status_held": "held",
    },
    "it": {
        "title": "La sua prenotazione",
        "service": "Servizio",
        "when": "Quando",
        "with": "Con",
        "where": "Dove",
        "reference": "Codice",
        "status": "Stato",
        "confirm": "Confermo la prenotazione",
        "cancel": "Annulla la prenotazione",
        "cancel_sure": "Annullare questa prenotazione?",
        "change": "Cambia orario",
        "change_hint": "Orari liberi in cui spostarsi:",
        "no_alternatives": "Nessun orario libero nelle prossime due settimane.",
        "change_closed": "Questa prenotazione non si può più spostare online; ci contatti.",
        "move_here": "Sposta qui",
        "pick_day": "Giorno",
        "prev_day": "Giorno prima",
        "next_day": "Giorno dopo",
        "anyone": "Chiunque",
        "show_times": "Mostra orari liberi",
        "no_times_that_day": "Nessun orario libero in questo giorno: provi un altro giorno o "
        "un'altra persona.",
        "browse_day": "Non è un giorno che possiamo mostrare. Scelga un giorno dal calendario.",
        "browse_day_range": "Quel giorno è fuori dai giorni prenotabili. Scelga un giorno dal "
        "calendario.",
        "browse_staff": "Questa persona non offre questo servizio. Scelga qualcuno dall'elenco.",
        "offer_title": "Scelga un nuovo orario",
        "offer_hint": "Il suo orario non è più disponibile. Le teniamo questi orari fino alle "
        "{until}:",
        "earlier_title": "Si è liberato un orario prima",
        "earlier_hint": "Lo teniamo per lei fino alle {until}:",
        "take": "Prendo questo orario",
        "at_risk": "Il suo appuntamento non può restare così: scelga un altro orario.",
        "waitlist": "Avvisatemi se si libera qualcosa prima",
        "waitlist_on": "È in lista per un orario prima (fino a {latest}).",
        "calendar": "Aggiungi al calendario",
        "language": "English",
        "done_confirm": "Prenotazione confermata.",
        "done_cancel": "Prenotazione annullata.",
        "done_change": "Prenotazione spostata.",
        "done_accept": "Fatto: la prenotazione è spostata all'orario scelto.",
        "done_waitlist": "La avviseremo se si libera un orario prima.",
        "done_feedback": "Grazie del suo giudizio!",
        "feedback_title": "Com'è andata la visita?",
        "journey_title": "Cosa è successo finora",
        "feedback_score": "Il suo voto (1 male, 5 benissimo)",
        "feedback_comment": "Un commento (facoltativo)",
        "feedback_send": "Invia",
        "feedback_given": "Grazie: ci ha dato {score}/5.",
        "refused_title": "Questo link non si può usare",
        "refused_forged": "Questo link non è valido. Usi il link del nostro ultimo messaggio o "
        "contatti l'attività.",
        "refused_expired": "Questo link è scaduto. Contatti l'attività per averne uno nuovo.",
        "refused_missing": "Non troviamo più questa prenotazione. Contatti l'attività.",
        "refused_form": "Il modulo è scaduto o non viene da questa pagina. Riapra il link e "
        "riprovi.",
        "problem": "Non è stato possibile",
        "status_pending": "in attesa di conferma",
        "status_confirmed": "confermata",
        "status_checked_in": "arrivato",
        "status_completed": "completata",
        "status_cancelled": "annullata",
        "status_no_show": "mancata",
        "status_expired": "scaduta",
        "status_held": "in attesa",
    },
}


def pick_language(requested: str | None, customer: str | None, business: str | None) -> str:
    for candidate in (requested, customer, business):
        if candidate:
            short = candidate.lower()[:2]
            if short in LANGUAGES:
                return short
    return "en"


def words(lang: str) -> dict[str, str]:
    return TEXT.get(lang, TEXT["en"])
