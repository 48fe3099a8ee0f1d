"""What the self-service page shows and does, for the customer behind one signed link.

Every action goes through the same services as the API, as the booking's customer
principal (the page is just another touchpoint). Confirming a pending booking is the
one exception: it is allowed when the business lets customers confirm
(``business.customer_may_confirm``, default true, matching the SMS "YES" reply), and is
recorded as ``system:self-service``.

Forms are protected against cross-site requests two ways: every form carries a nonce
that is an HMAC of the link's token (a third-party site cannot compute it without
the token), and a request whose ``Origin`` header names another site is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import icalendar

from booking import db
from booking.access.principal import Principal
from booking.access.tokens import TokenError, read_booking_token
from booking.availability.service import load_service_context, search_slots
from booking.bookings.changes import ChangeRequest, change_booking
from booking.bookings.policy import CHANGEABLE
from booking.bookings.transitions import transition
from booking.errors import Forbidden, InvalidInput
from booking.guarantee import offers, waitlist
from booking.guarantee.sql import STILL_LOST

ALTERNATIVES = 6
SEARCH_DAYS = 14


class LinkRefused(Exception):
    """The link cannot be used: ``reason`` is forged, expired or missing (-> HTTP status)."""

    STATUS = {"forged": 403, "malformed": 403, "expired": 410, "missing": 410, "form": 403}

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = "forged" if reason == "malformed" else reason
        self.status = self.STATUS[reason]


def booking_for(secret: str, token: str) -> UUID:
    try:
        return read_booking_token(secret, token)
    except TokenError as exc:
        raise LinkRefused(exc.reason) from exc


def form_nonce(secret: str, token: str) -> str:
    return hmac.new(secret.encode(), f"form:{token}".encode(), hashlib.sha256).hexdigest()[:32]


def check_form(secret: str, token: str, nonce: str | None, origin: str | None, host: str) -> None:
    if nonce is None or not hmac.compare_digest(nonce, form_nonce(secret, token)):
        raise LinkRefused("form")
    if origin and origin != "null":
        origin_host = origin.split("://", 1)[-1].rstrip("/")
        if origin_host != host:
            raise LinkRefused("form")


def customer(booking_id: UUID, business_id: UUID) -> Principal:
    return Principal(
        kind="customer",
        id=booking_id.hex,
        business_ids=frozenset({business_id}),
        booking_id=booking_id,
    )


@dataclass(frozen=True, slots=True)
class PageModel:
    booking: dict[str, Any]
    offer: dict[str, Any] | None
    waitlist: dict[str, Any] | None
    alternatives: list[dict[str, Any]]
    may_confirm: bool
    may_change: bool


_PAGE_BOOKING = f"""
    SELECT b.id, b.business_id, b.status, b.starts_at, b.ends_at, b.reference_code,
           b.service_id, b.staff_id, b.at_risk_since, b.version,
           biz.name AS business_name, biz.address, biz.time_zone, biz.locale AS business_locale,
           biz.customer_may_confirm, s.name AS service_name, st.name AS staff_name,
           c.locale AS customer_locale, c.name AS customer_name,
           (b.at_risk_since IS NOT NULL AND {STILL_LOST}) AS at_risk
    FROM booking b JOIN business biz ON biz.id = b.business_id
    JOIN service s ON s.id = b.service_id JOIN staff st ON st.id = b.staff_id
    LEFT JOIN customer c ON c.id = b.customer_id
    WHERE b.id = $1
"""


async def load_page(booking_id: UUID) -> PageModel:
    async with db.connection() as conn:
        row = await conn.fetchrow(_PAGE_BOOKING, booking_id)
        if row is None or row["status"] == "held":
            raise LinkRefused("missing")
        booking = dict(row)
        changeable = row["status"] in CHANGEABLE and row["starts_at"] > datetime.now(UTC)
        offer = await offers.open_offer_for_booking(conn, booking_id) if changeable else None
        entry = await waitlist.waitlist_entry_for(conn, booking_id) if changeable else None
        alternatives: list[dict[str, Any]] = []
        if changeable:
            context = await load_service_context(conn, row["business_id"], row["service_id"])
            now = datetime.now(UTC)
            slots = await search_slots(
                conn,
                context,
                now,
                now + timedelta(days=SEARCH_DAYS),
                exclude_booking=booking_id,
            )
            names = dict(
                await conn.fetch(
                    "SELECT id, name FROM staff WHERE business_id = $1", row["business_id"]
                )
            )
            seen: set[datetime] = set()
            for slot in slots:
                if slot.starts_at in seen or slot.starts_at == row["starts_at"]:
                    continue  # one button per time; the service picks who is free
                seen.add(slot.starts_at)
                alternatives.append(
                    {
                        "starts_at": slot.starts_at,
                        "staff_id": slot.staff_id,
                        "staff_name": names.get(slot.staff_id, ""),
                    }
                )
                if len(alternatives) >= ALTERNATIVES:
                    break
    return PageModel(
        booking=booking,
        offer=offer,
        waitlist=entry,
        alternatives=alternatives,
        may_confirm=row["status"] == "pending" and bool(row["customer_may_confirm"]),
        may_change=changeable,
    )


async def _business_of(booking_id: UUID) -> UUID:
    async with db.connection() as conn:
        business_id: UUID | None = await conn.fetchval(
            "SELECT business_id FROM booking WHERE id = $1", booking_id
        )
    if business_id is None:
        raise LinkRefused("missing")
    return business_id


async def act(booking_id: UUID, action: str, form: dict[str, str]) -> None:
    """Run one page action as the booking's customer; DomainErrors go back to the page."""
    business_id = await _business_of(booking_id)
    who = customer(booking_id, business_id)
    if action == "confirm":
        page = await load_page(booking_id)
        if not page.may_confirm:
            raise Forbidden("This booking cannot be confirmed from the link.")
        await transition(
            Principal(kind="system", id="self-service", business_ids=frozenset({business_id})),
            booking_id,
            "confirm",
            reason="confirmed by the customer on the booking page",
        )
    elif action == "cancel":
        await transition(who, booking_id, "cancel", reason="cancelled by the customer")
    elif action == "change":
        try:
            starts_at = datetime.fromisoformat(form.get("starts_at", ""))
        except ValueError as exc:
            raise InvalidInput("Choose one of the times shown.") from exc
        await change_booking(who, booking_id, ChangeRequest(starts_at=starts_at))
    elif action == "accept":
        raw_offer, raw_option = form.get("offer_id", ""), form.get("option", "")
        try:
            offer_id, option = UUID(raw_offer), int(raw_option)
        except ValueError as exc:
            raise InvalidInput("Choose one of the times shown.") from exc
        await offers.accept_offer(who, offer_id, option, channel="web")
    elif action == "waitlist":
        await waitlist.join_waitlist(who, booking_id)
    else:  # pragma: no cover - routes name the actions
        raise InvalidInput("Unknown action.")


def calendar_file(page: PageModel, base_url: str) -> bytes:
    """An .ics with the appointment (times in UTC; calendars show them locally)."""
    booking = page.booking
    cal = icalendar.Calendar()
    cal.add("prodid", "-//booking//appointment//EN")
    cal.add("version", "2.0")
    event = icalendar.Event()
    event.add("uid", f"{booking['id']}@booking")
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", booking["starts_at"].astimezone(UTC))
    event.add("dtend", booking["ends_at"].astimezone(UTC))
    event.add("summary", f"{booking['service_name']} - {booking['business_name']}")
    if booking["address"]:
        event.add("location", booking["address"])
    event.add(
        "description",
        f"{booking['service_name']} ({booking['staff_name']}). Ref {booking['reference_code']}.",
    )
    event.add("status", "CANCELLED" if booking["status"] == "cancelled" else "CONFIRMED")
    event.add("sequence", booking["version"])
    cal.add_component(event)
    return bytes(cal.to_ical())
