"""HTTP for the desk: pages for a signed-in staff session (booking.console.web).

GET shows; POST forms act through the same services as the API (the one move operation
``change_booking``, ``transition``, ``create_booking``), then redirect (303) back, or
show the page again with the reason (a conflict: 409 with the booking's new state).
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any
from urllib.parse import urlencode
from uuid import UUID
from zoneinfo import ZoneInfo

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect

from booking.bookings.changes import ChangeRequest, change_booking
from booking.bookings.checks import CustomerInput
from booking.bookings.placing import create_booking
from booking.bookings.transitions import transition
from booking.console.i18n import words
from booking.console.session import StaffSession
from booking.console.web import (
    CONSOLE,
    CONSOLE_EXCEPTION_HANDLERS,
    STAFF_DEPENDENCIES,
    html,
    language,
    safe_next,
    template_env,
)
from booking.desk import search, service
from booking.desk.card import load_card
from booking.desk.day import load_day
from booking.desk.i18n import DESK
from booking.desk.views import SLOT_SEPARATOR, card_view, day_view, parse_day, result_view
from booking.errors import DomainError, NotFound, SlotTaken, VersionMismatch

_env = template_env("booking.desk")


def _page(template: str, status: int = 200, **values: Any) -> Response[str]:
    """A desk page; a language asked for with ``?lang=`` is remembered in a cookie."""
    response = html(_env, template, status, **values)
    if values.get("lang_asked"):
        response.set_cookie(Cookie(key="booking_lang", value=values["lang"], path="/"))
    return response
STATUS_ACTIONS = ("check_in", "complete", "no_show", "cancel")


async def _context(request: Request[Any, Any, Any], staff: StaffSession) -> dict[str, Any]:
    business = await service.load_business(staff.business_id)
    lang = language(request, business.locale)
    return {
        "lang": lang,
        "t": words(lang, DESK),
        "business": business,
        "staff": staff,
        "lang_asked": bool(request.query_params.get("lang")),
    }


def _uuid(raw: str | None) -> UUID | None:
    try:
        return UUID(raw) if raw else None
    except ValueError:
        return None


async def _results(values: dict[str, Any], q: str) -> dict[str, Any]:
    """The search's answer; an exact reference hit brings its card along (one step less)."""
    business: service.Business = values["business"]
    staff: StaffSession = values["staff"]
    tz = ZoneInfo(business.time_zone)
    today = datetime.combine(datetime.now(tz).date(), time(0), tzinfo=tz)
    found = await search.find_bookings(
        business.id, search.parse_query(q, business.locale), today.astimezone(UTC)
    )
    t, lang = values["t"], values["lang"]
    results = [result_view(row, business.time_zone, lang, t) for row in found]
    card = None
    if len(found) == 1 and found[0]["exact"]:
        card = card_view(await load_card(staff.principal, found[0]["id"]), lang, t)
    return {"q": q, "results": results, "c": card, "back": ""}


async def _card_page(
    request: Request[Any, Any, Any],
    staff: StaffSession,
    booking_id: UUID,
    *,
    day: str | None = None,
    who: str | None = None,
    done: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response[str]:
    values = await _context(request, staff)
    t = values["t"]
    card = await load_card(staff.principal, booking_id, day=parse_day(day), staff_id=_uuid(who))
    return _page(
        "booking.html",
        status,
        page="find",
        title=f"{t['reference']} {card.booking['reference_code']}",
        c=card_view(card, values["lang"], t),
        done=t.get(f"done_{done}") if done else None,
        error=error,
        back=f"/desk/bookings/{booking_id}",
        **values,
    )


async def _day(
    request: Request[Any, Any, Any], staff: StaffSession, raw_day: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The page's context and the day as its template shows it."""
    values = await _context(request, staff)
    tz = ZoneInfo(values["business"].time_zone)
    day = parse_day(raw_day) or datetime.now(tz).date()
    loaded = await load_day(staff.principal, staff.business_id, day, tz)
    return values, day_view(loaded, values["lang"], values["t"], datetime.now(UTC))


async def _day_page(
    request: Request[Any, Any, Any],
    staff: StaffSession,
    raw_day: str | None,
    *,
    done: str | None = None,
    error: str | None = None,
    status: int = 200,
    walk_in: str | None = None,
    cancel: str | None = None,
    filled: dict[str, str] | None = None,
) -> Response[str]:
    """The day; ``walk_in`` (a gap's id) or ``cancel`` (a booking's id) opens that one
    form in place, ``filled`` with what was typed when a walk-in was refused."""
    values, shown = await _day(request, staff, raw_day)
    t = values["t"]
    return _page(
        "day.html",
        status,
        page="day",
        title=t["day_title"],
        d=shown,
        done=t.get(f"done_{done}") if done else None,
        error=error,
        back=f"/desk/day?date={shown['date']}",
        walk_in=walk_in,
        cancel=cancel,
        filled=filled,
        **values,
    )


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {key: str(value)[:500] for key, value in (await request.form()).items()}


class DeskController(Controller):
    path = "/desk"
    include_in_schema = False
    opt = CONSOLE
    dependencies = STAFF_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    @get("/", opt=CONSOLE)
    async def find(
        self, request: Request[Any, Any, Any], staff: NamedDependency[StaffSession]
    ) -> Response[str]:
        """Query ``q``: the search (also without script: the form is a plain GET)."""
        values = await _context(request, staff)
        q = (request.query_params.get("q") or "")[:100]
        found = await _results(values, q) if q else {"q": "", "results": [], "c": None}
        return _page("find.html", page="find", title=values["t"]["desk_title"],
                    **found, **values)

    @get("/search", opt=CONSOLE)
    async def search_fragment(
        self, request: Request[Any, Any, Any], staff: NamedDependency[StaffSession]
    ) -> Response[str]:
        """The results as you type: an HTML fragment for the page's script."""
        values = await _context(request, staff)
        q = (request.query_params.get("q") or "")[:100]
        return _page("results.html", **(await _results(values, q)), **values)

    @get("/bookings/{booking_id:uuid}", opt=CONSOLE)
    async def booking_card(
        self,
        request: Request[Any, Any, Any],
        booking_id: FromPath[UUID],
        staff: NamedDependency[StaffSession],
    ) -> Response[str]:
        """Query: ``day`` (free times of that day), ``staff`` (only them), ``done``."""
        query = request.query_params
        try:
            return await _card_page(
                request,
                staff,
                booking_id,
                day=query.get("day"),
                who=query.get("staff"),
                done=query.get("done"),
            )
        except NotFound:  # another business's booking looks like none at all
            return await self._not_found(request, staff)

    async def _not_found(
        self, request: Request[Any, Any, Any], staff: StaffSession
    ) -> Response[str]:
        values = await _context(request, staff)
        return _page(
            "find.html", 404, page="find", title=values["t"]["desk_title"], q="",
            results=[], c=None, error=values["t"]["no_results"], **values,
        )

    @post("/bookings/{booking_id:uuid}/move", opt=CONSOLE, status_code=303)
    async def move(
        self,
        request: Request[Any, Any, Any],
        booking_id: FromPath[UUID],
        staff: NamedDependency[StaffSession],
    ) -> Response[Any]:
        """One press: the chosen free time (``slot`` = start|staff), checked against the
        ``version`` the card showed; a reason when the policy needs an override."""
        form = await _form(request)
        t = (await _context(request, staff))["t"]
        starts_raw, _, staff_raw = form.get("slot", "").partition(SLOT_SEPARATOR)
        try:
            starts_at = datetime.fromisoformat(starts_raw)
            version = int(form.get("version", ""))
        except ValueError:
            return await _card_page(request, staff, booking_id, error=t["slot_gone"], status=400)
        reason = form.get("override_reason", "").strip() or None
        try:
            await change_booking(
                staff.principal,
                booking_id,
                ChangeRequest(
                    starts_at=starts_at, staff_id=_uuid(staff_raw), override_reason=reason
                ),
                expected_version=version,
            )
        except NotFound:
            return await self._not_found(request, staff)
        except VersionMismatch:
            return await _card_page(request, staff, booking_id, error=t["changed_elsewhere"],
                                    status=409)
        except SlotTaken:
            return await _card_page(
                request, staff, booking_id, day=form.get("day"), who=form.get("staff"),
                error=t["slot_gone"], status=409,
            )
        except DomainError as exc:
            return await _card_page(request, staff, booking_id, error=exc.detail,
                                    status=exc.status)
        return Redirect(f"/desk/bookings/{booking_id}?done=moved", status_code=303)

    @post("/bookings/{booking_id:uuid}/status", opt=CONSOLE, status_code=303)
    async def change_status(
        self,
        request: Request[Any, Any, Any],
        booking_id: FromPath[UUID],
        staff: NamedDependency[StaffSession],
    ) -> Response[Any]:
        """Check in, complete, no-show, or cancel with a ``reason``; back to ``back``.
        ``version`` is a form field, or in the query (the day page's one shared form)."""
        form = await _form(request)
        t = (await _context(request, staff))["t"]
        action = form.get("action", "")
        back = safe_next(form.get("back") or f"/desk/bookings/{booking_id}")
        try:  # the day page's shared form sends it in the button's formaction
            version = int(form.get("version") or str(request.query_params.get("version", "")))
        except ValueError:
            version = -1
        reason = form.get("reason", "").strip() or None
        try:
            if action not in STATUS_ACTIONS:
                raise NotFound("No such action.")
            if action == "cancel" and reason is None:
                return await _card_page(request, staff, booking_id, error=t["cancel_reason"],
                                        status=422)
            await transition(
                staff.principal, booking_id, action, expected_version=version, reason=reason
            )
        except VersionMismatch:
            return await _card_page(request, staff, booking_id, error=t["changed_elsewhere"],
                                    status=409)
        except NotFound:
            return await self._not_found(request, staff)
        except DomainError as exc:
            return await _card_page(request, staff, booking_id, error=exc.detail,
                                    status=exc.status)
        separator = "&" if "?" in back else "?"
        return Redirect(f"{back}{separator}{urlencode({'done': action})}", status_code=303)

    @get("/day", opt=CONSOLE)
    async def day(
        self, request: Request[Any, Any, Any], staff: NamedDependency[StaffSession]
    ) -> Response[str]:
        """Query ``date`` (YYYY-MM-DD in the business's zone; today by default), ``done``."""
        query = request.query_params
        return await _day_page(
            request,
            staff,
            query.get("date"),
            done=query.get("done"),
            walk_in=query.get("walk_in"),
            cancel=query.get("cancel"),
        )

    @get("/day/form", opt=CONSOLE)
    async def day_form(
        self, request: Request[Any, Any, Any], staff: NamedDependency[StaffSession]
    ) -> Response[str]:
        """One form of the day page, alone, for its script: the same query as the page's
        link (``date`` and ``walk_in`` or ``cancel``). 404 when the gap or the cancellable
        booking is no longer on the day (the script then opens the page itself)."""
        query = request.query_params
        values, shown = await _day(request, staff, query.get("date"))
        walk_in, cancel = query.get("walk_in"), query.get("cancel")
        for col in shown["columns"]:
            for e in col["entries"]:
                if walk_in and e["kind"] == "gap" and e["id"] == walk_in and e["walk_in"]:
                    if col["services"]:
                        return _page("day_form.html", d=shown, col=col, e=e, **values)
                elif (
                    cancel
                    and e["kind"] == "booking"
                    and str(e["b"]["id"]) == cancel
                    and "cancel" in e["actions"]
                ):
                    back = f"/desk/day?date={shown['date']}"
                    return _page("day_form.html", d=shown, col=None, b=e["b"], back=back,
                                 **values)
        return Response(
            "", status_code=404, media_type=MediaType.HTML, headers={"Cache-Control": "no-store"}
        )

    @post("/walk-in", opt=CONSOLE, status_code=303)
    async def walk_in(
        self, request: Request[Any, Any, Any], staff: NamedDependency[StaffSession]
    ) -> Response[Any]:
        """A walk-in into a free gap: ``date``, ``time`` (local), ``staff_id``,
        ``service_id``, the customer's ``name`` and ``phone``; booked like any booking."""
        form = await _form(request)
        business = await service.load_business(staff.business_id)
        tz = ZoneInfo(business.time_zone)
        day = parse_day(form.get("date"))
        try:
            moment = time.fromisoformat(form.get("time", ""))
            service_id = UUID(form.get("service_id", ""))
        except ValueError:
            moment, service_id = None, None
        if day is None or moment is None or service_id is None:
            t = words(language(request, business.locale), DESK)
            return await _day_page(request, staff, form.get("date"), error=t["walk_in_time"],
                                   status=422, walk_in=form.get("gap"), filled=form)
        try:
            await create_booking(
                staff.principal,
                staff.business_id,
                service_id,
                datetime.combine(day, moment, tzinfo=tz),
                CustomerInput(name=form.get("name", "").strip(), phone=form.get("phone", "")),
                staff_id=_uuid(form.get("staff_id")),
                channel="front_desk",
            )
        except DomainError as exc:
            return await _day_page(request, staff, day.isoformat(), error=exc.detail,
                                   status=exc.status, walk_in=form.get("gap"), filled=form)
        return Redirect(f"/desk/day?date={day.isoformat()}&done=walk_in", status_code=303)
