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
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import icalendar

from booking import db
from booking.access.principal import Principal, booking_customer
from booking.access.tokens import TokenError, read_booking_token, same_secret
from booking.availability.context import load_service_context
from booking.availability.service import search_slots
from booking.bookings.changes import ChangeRequest, change_booking
from booking.bookings.checks import load_policy
from booking.bookings.policy import BookingFacts, check_changeable, decide_change
from booking.bookings.segments import segments_of
from booking.bookings.status import ACTIVE
from booking.bookings.store import BOOKING_COLUMNS
from booking.bookings.transitions import transition
from booking.errors import Forbidden, InvalidInput
from booking.guarantee import accept, offers, waitlist
from booking.guarantee.sql import STILL_LOST
from booking.journey import feedback
from booking.sequences.availability import MAX_RANGE, find_starts
from booking.sequences.service import move_sequence, visit_request
from booking.series.service import cancel_following
from booking.sessions.service import move_seat_booking

SEARCH_DAYS = 14  # without a chosen day: the first day with free times in this range
BROWSE_DAYS = 60  # the day picker goes this far ahead (within the search API's limit)
MAX_TIMES = 64  # free times shown for one day


class LinkRefused(Exception):
    """The link cannot be used: ``reason`` is forged, expired or missing (-> HTTP status)."""

    STATUS = {"forged": 403, "malformed": 403, "expired": 410, "missing": 410, "form": 403}

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = "forged" if reason == "malformed" else reason
        self.status = self.STATUS[reason]


def booking_for(secret: str | Sequence[str], token: str) -> UUID:
    try:
        return read_booking_token(secret, token)
    except TokenError as exc:
        raise LinkRefused(exc.reason) from exc


def form_nonce(secret: str, token: str) -> str:
    return hmac.new(secret.encode(), f"form:{token}".encode(), hashlib.sha256).hexdigest()[:32]


def check_form(secret: str, token: str, nonce: str | None, origin: str | None, host: str) -> None:
    if nonce is None or not same_secret(nonce, form_nonce(secret, token)):
        raise LinkRefused("form")
    if origin and origin != "null":
        origin_host = origin.split("://", 1)[-1].rstrip("/")
        if origin_host != host:
            raise LinkRefused("form")


@dataclass(frozen=True, slots=True)
class Browse:
    """Which free times the change section shows: one day (in the business's zone) and
    anyone or one member of staff; ``days`` is the range the day picker offers."""

    day: date
    staff_id: UUID | None
    staff: list[dict[str, Any]]  # the service's eligible staff: id, name
    first_day: date
    last_day: date
    chosen: bool  # the customer named the day (else: the first day with free times)


class BadBrowse(Exception):
    """A day or staff value in the page's URL that it cannot show (-> a friendly 400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # day | day_range | staff


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_browse(day: str | None, staff: str | None) -> tuple[date | None, UUID | None]:
    """``day`` is YYYY-MM-DD or empty; ``staff`` a staff id, ``any`` or empty."""
    chosen: date | None = None
    if day:
        try:
            if not _DAY.fullmatch(day):
                raise ValueError(day)
            chosen = date.fromisoformat(day)
        except ValueError as exc:
            raise BadBrowse("day") from exc
    if staff in (None, "", "any"):
        return chosen, None
    try:
        return chosen, UUID(staff)
    except ValueError as exc:
        raise BadBrowse("staff") from exc


@dataclass(frozen=True, slots=True)
class PageModel:
    booking: dict[str, Any]
    offer: dict[str, Any] | None
    waitlist: dict[str, Any] | None
    alternatives: list[dict[str, Any]]
    may_confirm: bool
    may_change: bool
    browse: Browse | None = None
    may_move: bool = True  # the change policy lets the customer pick another time
    feedback: dict[str, Any] | None = None  # a completed visit's question (status, score)
    segments: list[dict[str, Any]] = field(default_factory=list)  # a visit's services
    session: dict[str, Any] | None = None  # a class: its time, seats, places left
    # A class the customer may move: the next classes of the service with room for the
    # party (moved by sessions.service.move_seat_booking, the API's seat move).
    may_move_class: bool = False
    classes: list[dict[str, Any]] = field(default_factory=list)
    # A visit the customer may move: the next starts where every segment fits (moved by
    # sequences.service.move_sequence, the API's visit move).
    may_move_visit: bool = False
    visit_times: list[datetime] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)  # this and later occurrences


_PAGE_BOOKING = f"""
    SELECT b.id, b.business_id, b.status, b.starts_at, b.ends_at, b.reference_code,
           b.service_id, b.staff_id, b.at_risk_since, b.version, b.is_sequence,
           b.session_id, b.seats, b.series_id,
           biz.name AS business_name, biz.address, biz.time_zone, biz.locale AS business_locale,
           biz.customer_may_confirm, s.name AS service_name, st.name AS staff_name,
           c.locale AS customer_locale, c.name AS customer_name,
           (b.at_risk_since IS NOT NULL AND {STILL_LOST}) AS at_risk
    FROM booking b JOIN business biz ON biz.id = b.business_id
    JOIN service s ON s.id = b.service_id JOIN staff st ON st.id = b.staff_id
    LEFT JOIN customer c ON c.id = b.customer_id
    WHERE b.id = $1
"""


async def load_page(
    booking_id: UUID, day: date | None = None, staff_id: UUID | None = None
) -> PageModel:
    """The page of one booking; when it can change, the free times of ``day`` (default:
    the first day with any in the next two weeks) with ``staff_id`` (default: anyone).
    A day outside the picker's range or staff who do not offer the service: BadBrowse."""
    async with db.connection() as conn:
        row = await conn.fetchrow(_PAGE_BOOKING, booking_id)
        if row is None or row["status"] == "held":
            raise LinkRefused("missing")
        booking = dict(row)
        now = datetime.now(UTC)
        changeable = check_changeable(row["status"]).allowed and row["starts_at"] > now
        offer = await offers.open_offer_for_booking(conn, booking_id) if changeable else None
        entry = await waitlist.waitlist_entry_for(conn, booking_id) if changeable else None
        # The customer's own moves are the change policy's to allow (offers are not).
        may_move = changeable and (
            decide_change(
                await load_policy(conn, row["business_id"]),
                BookingFacts.from_row(
                    await conn.fetchrow(
                        f"SELECT {BOOKING_COLUMNS} FROM booking b WHERE b.id = $1", booking_id
                    )
                ),
                actor="customer",
                now=now,
            ).allowed
        )
        segments, session, series = await _parts(conn, booking)
        may_move_class = may_move and session is not None
        classes = await _other_classes(conn, booking) if may_move_class else []
        may_move_visit = may_move and bool(segments)
        visit_times = await _visit_times(conn, booking) if may_move_visit else []
        if segments or session is not None:
            may_move = False  # a visit or a class moves as a whole: not with this picker
        alternatives: list[dict[str, Any]] = []
        browse: Browse | None = None
        if may_move:
            browse, alternatives = await _free_times(conn, booking, day, staff_id)
        asked = await conn.fetchrow(
            "SELECT status, score FROM feedback WHERE business_id = $1 AND booking_id = $2 "
            "AND status IN ('scheduled', 'asked', 'received')",
            row["business_id"],
            booking_id,
        )
    return PageModel(
        booking=booking,
        offer=offer,
        waitlist=entry,
        alternatives=alternatives,
        may_confirm=row["status"] == "pending" and bool(row["customer_may_confirm"]),
        may_change=changeable,
        browse=browse,
        may_move=may_move,
        feedback=dict(asked) if asked else None,
        segments=segments,
        session=session,
        series=series,
        may_move_class=may_move_class,
        classes=classes,
        may_move_visit=may_move_visit,
        visit_times=visit_times,
    )


SERIES_SHOWN = 10


async def _parts(
    conn: asyncpg.Connection, booking: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, list[dict[str, Any]]]:
    """What the booking is made of: a visit's segments, a class, a series' occurrences
    from this one on (at most :data:`SERIES_SHOWN`)."""
    segments: list[dict[str, Any]] = []
    if booking["is_sequence"]:
        segments = [
            dict(r)
            for r in await conn.fetch(
                "SELECT g.position, g.starts_at, g.ends_at, s.name AS service_name, "
                "st.name AS staff_name FROM booking_segment g "
                "JOIN service s ON s.business_id = g.business_id AND s.id = g.service_id "
                "JOIN staff st ON st.business_id = g.business_id AND st.id = g.staff_id "
                "WHERE g.business_id = $1 AND g.booking_id = $2 ORDER BY g.position",
                booking["business_id"],
                booking["id"],
            )
        ]
    session = None
    if booking["session_id"] is not None:
        row = await conn.fetchrow(
            "SELECT starts_at, ends_at, capacity, seats_taken, status FROM session "
            "WHERE business_id = $1 AND id = $2",
            booking["business_id"],
            booking["session_id"],
        )
        session = dict(row) if row else None
    series: list[dict[str, Any]] = []
    if booking["series_id"] is not None:
        series = [
            dict(r)
            for r in await conn.fetch(
                "SELECT id, starts_at, reference_code, status FROM booking "
                "WHERE business_id = $1 AND series_id = $2 AND starts_at >= $3 "
                "AND status = ANY($4::text[]) ORDER BY starts_at, id LIMIT $5",
                booking["business_id"],
                booking["series_id"],
                booking["starts_at"],
                list(ACTIVE),
                SERIES_SHOWN,
            )
        ]
    return segments, session, series


CLASSES_SHOWN = 6


async def _other_classes(conn: asyncpg.Connection, booking: dict[str, Any]) -> list[dict[str, Any]]:
    """The next classes of the booking's service with room for its whole party (the
    move itself is checked again, by the database, when the customer picks one)."""
    rows = await conn.fetch(
        """
        SELECT s.id, s.starts_at, s.capacity - s.seats_taken AS seats_left, st.name AS staff_name
        FROM session s JOIN staff st ON st.business_id = s.business_id AND st.id = s.staff_id
        WHERE s.business_id = $1 AND s.service_id = $2 AND s.id <> $3
          AND s.status = 'scheduled' AND s.starts_at > now()
          AND s.capacity - s.seats_taken >= $4
        ORDER BY s.starts_at, s.id LIMIT $5
        """,
        booking["business_id"],
        booking["service_id"],
        booking["session_id"],
        booking["seats"],
        CLASSES_SHOWN,
    )
    return [dict(row) for row in rows]


VISIT_TIMES_SHOWN = 8


async def _visit_times(conn: asyncpg.Connection, booking: dict[str, Any]) -> list[datetime]:
    """The next starts in the coming week where the whole visit fits (its services and
    gaps as booked); the move re-plans and the database decides when one is picked."""
    wanted = visit_request(await segments_of(conn, booking["business_id"], booking["id"]))
    now = datetime.now(UTC)
    found = await find_starts(
        conn, booking["business_id"], wanted, now, now + MAX_RANGE, apply_notice=True
    )
    starts = [f["starts_at"] for f in found if f["starts_at"] != booking["starts_at"]]
    return starts[:VISIT_TIMES_SHOWN]


async def _free_times(
    conn: asyncpg.Connection, booking: dict[str, Any], day: date | None, staff_id: UUID | None
) -> tuple[Browse, list[dict[str, Any]]]:
    context = await load_service_context(conn, booking["business_id"], booking["service_id"])
    names = dict(
        await conn.fetch(
            "SELECT id, name FROM staff WHERE id = ANY($1::uuid[])", list(context.eligible_staff)
        )
    )
    if staff_id is not None and staff_id not in context.eligible_staff:
        raise BadBrowse("staff")
    tz = context.tz
    now = datetime.now(UTC)
    today = now.astimezone(tz).date()
    last_day = today + timedelta(days=BROWSE_DAYS - 1)
    if day is not None and not today <= day <= last_day:
        raise BadBrowse("day_range")
    if day is None:  # the first two weeks, to find the first day with a free time
        start, end = now, now + timedelta(days=SEARCH_DAYS)
    else:
        start = max(now, datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC))
        end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)
    slots = await search_slots(
        conn, context, start, end, staff_id=staff_id, exclude_booking=booking["id"]
    )
    shown = day or (slots[0].starts_at.astimezone(tz).date() if slots else today)
    times: list[dict[str, Any]] = []
    seen: set[datetime] = set()
    for slot in slots:
        if slot.starts_at.astimezone(tz).date() != shown or slot.starts_at in seen:
            continue  # with anyone: one button per time, the change picks who is free
        if slot.starts_at == booking["starts_at"] and staff_id in (None, booking["staff_id"]):
            continue  # where the booking already is
        seen.add(slot.starts_at)
        times.append(
            {
                "starts_at": slot.starts_at,
                "staff_id": slot.staff_id,
                "staff_name": names.get(slot.staff_id, ""),
            }
        )
        if len(times) >= MAX_TIMES:
            break
    browse = Browse(
        day=shown,
        staff_id=staff_id,
        staff=[{"id": sid, "name": names.get(sid, "")} for sid in context.eligible_staff],
        first_day=today,
        last_day=last_day,
        chosen=day is not None,
    )
    return browse, times


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
    who = booking_customer(booking_id, business_id)
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
    elif action == "cancel_following":
        await cancel_following(who, booking_id, "cancelled by the customer (this and later)")
    elif action == "change":
        try:
            starts_at = datetime.fromisoformat(form.get("starts_at", ""))
            staff_id = UUID(form["staff_id"]) if form.get("staff_id") else None
        except ValueError as exc:
            raise InvalidInput("Choose one of the times shown.") from exc
        await change_booking(who, booking_id, ChangeRequest(starts_at=starts_at, staff_id=staff_id))
    elif action == "move_class":
        try:
            session_id = UUID(form.get("session_id", ""))
        except ValueError as exc:
            raise InvalidInput("Choose one of the classes shown.") from exc
        await move_seat_booking(who, booking_id, session_id)
    elif action == "move_visit":
        try:
            starts_at = datetime.fromisoformat(form.get("starts_at", ""))
        except ValueError as exc:
            raise InvalidInput("Choose one of the times shown.") from exc
        await move_sequence(who, booking_id, starts_at)
    elif action == "accept":
        raw_offer, raw_option = form.get("offer_id", ""), form.get("option", "")
        try:
            offer_id, option = UUID(raw_offer), int(raw_option)
        except ValueError as exc:
            raise InvalidInput("Choose one of the times shown.") from exc
        await accept.accept_offer(who, offer_id, option, channel="web")
    elif action == "waitlist":
        await waitlist.join_waitlist(who, booking_id)
    elif action == "feedback":
        try:
            score = int(form.get("score", ""))
        except ValueError as exc:
            raise InvalidInput("Choose a score from 1 to 5.", field="score") from exc
        await feedback.answer(booking_id, score, form.get("comment", "")[:2000])
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
