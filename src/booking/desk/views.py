"""Shaping what the desk reads into what its pages show: words, local times, buttons."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from booking.availability.slots import FreeSlot
from booking.desk.card import Card
from booking.notifications.templates import format_day, format_when

SLOT_SEPARATOR = "|"


def slot_value(slot: FreeSlot) -> str:
    """What an alternative's button sends: the start (UTC, RFC 3339) and the staff id."""
    return f"{slot.starts_at.isoformat()}{SLOT_SEPARATOR}{slot.staff_id}"


def status_word(t: dict[str, str], status: str) -> str:
    return t.get(f"status_{status}", status)


def result_view(row: dict[str, Any], tz: str, lang: str, t: dict[str, str]) -> dict[str, Any]:
    return row | {
        "when": format_when(row["starts_at"], tz, lang),
        "status_word": status_word(t, row["status"]),
        "staff_name": row["staff_name"] or "",
    }


def actor_name(entry: dict[str, Any]) -> str:
    if entry["actor_type"] == "staff":
        return str(entry["key_name"] or "staff")
    return str(entry["actor_type"])


def related_view(card: Card, lang: str, t: dict[str, str]) -> dict[str, Any]:
    """The card's extras: resources, the class, the whole visit, the series, the journey."""
    tz = card.tz.key
    related = card.related
    session = related.session
    seats: dict[str, Any] | None = None
    if session is not None:
        seats = {
            "text": t["class_facts"].format(
                service=session["service_name"],
                staff=session["staff_name"],
                when=format_when(session["starts_at"], tz, lang),
                seats=card.booking.get("seats", 1),
                taken=session["seats_taken"],
                capacity=session["capacity"],
                left=max(session["capacity"] - session["seats_taken"], 0),
            ),
            "left": max(session["capacity"] - session["seats_taken"], 0),
            "room": session["resource_name"] or "",
            "cancelled": session["status"] == "cancelled",
        }
    return {
        "resources": [f"{r['name']} ({r['kind']})" for r in related.resources],
        "session": seats,
        "segments": [
            {
                "position": s["position"],
                "when": format_when(s["starts_at"], tz, lang),
                "until": f"{s['ends_at'].astimezone(card.tz):%H:%M}",
                "service": s["service_name"],
                "staff": s["staff_name"],
                "resource": s["resource_name"] or "",
            }
            for s in related.segments
        ],
        "in_series": card.booking.get("series_id") is not None,
        "next_in_series": [
            {
                "id": b["id"],
                "reference_code": b["reference_code"],
                "when": format_when(b["starts_at"], tz, lang),
                "status_word": status_word(t, b["status"]),
            }
            for b in related.next_in_series
        ],
        "journey": [
            {
                "when": format_when(e.at, tz, lang),
                "touchpoint": e.touchpoint,
                "by": e.actor.name,
                "channel": e.channel,
            }
            for e in card.journey
        ],
    }


def card_view(card: Card, lang: str, t: dict[str, str]) -> dict[str, Any]:
    b = card.booking
    tz = card.tz.key
    decision = card.decision
    why = "; ".join(breach.message for breach in decision.breaches) if decision else ""
    day = card.day
    one = timedelta(days=1)
    return {
        "b": b,
        "more": related_view(card, lang, t),
        "when": format_when(b["starts_at"], tz, lang),
        "status_word": status_word(t, b["status"]),
        "offer_until": format_when(b["offer_expires_at"], tz, lang)
        if b["offer_expires_at"]
        else None,
        "movable": decision is not None and decision.outcome != "refused",
        "needs_override": decision is not None and decision.outcome == "needs_override",
        "refused": decision is not None and decision.outcome == "refused",
        "why": why,
        "changes_used": t["changes_used"].format(used=b["change_count"], max=card.max_changes),
        "cutoff": t["cutoff"].format(when=format_when(card.cutoff_at, tz, lang)),
        "alternatives": [
            {
                "value": slot_value(slot),
                "when": format_when(slot.starts_at, tz, lang),
                "staff": card.staff_names.get(slot.staff_id, ""),
            }
            for slot in card.alternatives
        ],
        "alternatives_hint": t["day_hint"].format(day=format_day(day, lang))
        if day
        else t["earliest_hint"],
        "day": day.isoformat() if day else "",
        "prev_day": (day - one).isoformat() if day else None,
        "next_day": (day + one).isoformat() if day else None,
        "staff_filter": str(card.staff_filter) if card.staff_filter else "",
        "staff_options": [{"id": str(s), "name": n} for s, n in card.eligible_staff],
        "history": [
            {
                "when": format_when(h["occurred_at"], tz, lang),
                "event": h["event"].removeprefix("booking."),
                "by": actor_name(h),
                "reason": h["reason"],
            }
            for h in card.history
        ],
    }


def parse_day(raw: str | None) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        return None


def _hm(moment: Any, tz: Any) -> str:
    local = moment.astimezone(tz)
    return f"{local.hour:02d}:{local.minute:02d}"  # strftime is slower (the day has ~400)


def day_view(day: Any, lang: str, t: dict[str, str], now: Any) -> dict[str, Any]:
    """The day page: at-risk and open offers first, then a column per member of staff."""
    tz = day.tz
    one = timedelta(days=1)
    staff_names = {member.id: member.name for member in day.staff}
    columns = []
    # Each booking shows only the actions the server takes now: check-in opens at midnight
    # of the day, a no-show once the start has passed (booking.bookings.transitions).
    check_in_open = now >= datetime.combine(day.day, time(0), tzinfo=tz)
    for member in day.staff:
        entries = []
        member_id = str(member.id)
        for entry in member.entries:
            starts = entry.starts_at.astimezone(tz)
            ends = entry.ends_at.astimezone(tz)
            item: dict[str, Any] = {
                "kind": entry.kind,
                "from": f"{starts.hour:02d}:{starts.minute:02d}",
                "to": f"{ends.hour:02d}:{ends.minute:02d}",
                "reason": entry.reason,
            }
            b = entry.booking
            if b is not None:
                status = b["status"]
                item["b"] = b | {"status_word": status_word(t, status)}
                item["hold_until"] = _hm(b["hold_expires_at"], tz) if b["hold_expires_at"] else ""
                actions: tuple[str, ...] = ()
                if entry.kind != "booking":
                    pass
                elif status == "checked_in":
                    actions = ("complete",)
                elif status in ("pending", "confirmed"):
                    actions = (
                        ("check_in",) * check_in_open
                        + ("no_show",) * (now >= entry.starts_at)
                        + ("cancel",)
                    )
                item["actions"] = actions
                item["act"] = f"/desk/bookings/{b['id']}/status?version={b['version']}"
            elif entry.kind == "gap":
                # Walk-ins start on a five-minute mark from now, inside the gap.
                first = max(entry.starts_at, now).astimezone(tz)
                start = first.replace(second=0, microsecond=0, minute=0) + timedelta(
                    minutes=(first.minute + 4) // 5 * 5
                )
                item["walk_in"] = start < ends
                item["walk_in_at"] = item["walk_in_min"] = f"{start.hour:02d}:{start.minute:02d}"
                item["walk_in_max"] = item["to"]
                item["id"] = f"{member_id}-{starts.hour:02d}{starts.minute:02d}"
            entries.append(item)
        columns.append(
            {
                "id": member_id,
                "name": member.name,
                "entries": entries,
                "services": [
                    {"id": str(i), "name": n, "minutes": m} for i, n, m in member.services
                ],
                "off": not member.hours,
            }
        )
    risk = day.risk
    return {
        "date": day.day.isoformat(),
        "day_label": format_day(day.day, lang),
        "prev": (day.day - one).isoformat(),
        "next": (day.day + one).isoformat(),
        "columns": columns,
        "at_risk": [
            {
                "id": r["id"],
                "reference_code": r["reference_code"],
                "when": format_when(r["starts_at"], tz.key, lang),
                "reason": r.get("at_risk_reason") or "",
                "staff": staff_names.get(r["staff_id"], ""),
            }
            for r in risk["at_risk"]
        ],
        "offers": [
            {
                "booking_id": o["booking_id"],
                "until": format_when(o["expires_at"], tz.key, lang),
                "options": [
                    f"{format_when(opt['starts_at'], tz.key, lang)} · {opt['staff_name']}"
                    for opt in o["options"]
                    if opt["hold_status"] == "held"
                ],
            }
            for o in risk["open_offers"]
        ],
    }
