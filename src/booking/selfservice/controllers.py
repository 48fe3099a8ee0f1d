"""HTTP for the self-service page: GET shows, POST forms act then redirect (303) back.

Public routes (the signed token in the URL is the credential); they answer HTML,
never a problem document or a trace: a forged link gets 403, an expired one 410.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect

from booking.access.guards import PAGE_LIMITED, PUBLIC
from booking.errors import DomainError
from booking.notifications.templates import format_day, format_when
from booking.selfservice import service
from booking.selfservice.i18n import pick_language, words
from booking.selfservice.journey_view import customer_journey
from booking.settings import Settings

_env = Environment(
    loader=PackageLoader("booking.selfservice", "templates"),
    autoescape=select_autoescape(["html"]),
)
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
ACTIONS = (
    "confirm",
    "cancel",
    "cancel_following",
    "change",
    "move_class",
    "move_visit",
    "accept",
    "waitlist",
    "feedback",
)


def _html(template: str, http_status: int = 200, **values: Any) -> Response[str]:
    body = _env.get_template(template).render(**values)
    return Response(body, status_code=http_status, media_type=MediaType.HTML, headers=NO_STORE)


def _refused(reason: str, status: int, lang: str | None) -> Response[str]:
    chosen = pick_language(lang, None, None) if lang else "it"
    t = words(chosen)
    return _html(
        "refused.html",
        status,
        lang=chosen,
        t=t,
        message=t.get(f"refused_{reason}", t["refused_forged"]),
    )


async def _page(
    settings: Settings,
    token: str,
    lang: str | None,
    *,
    day: str | None = None,
    staff: str | None = None,
    done: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response[str]:
    browse_error: str | None = None
    try:
        booking_id = service.booking_for(settings.link_secrets, token)
        try:
            page = await service.load_page(booking_id, *service.parse_browse(day, staff))
        except service.BadBrowse as exc:  # a bad day or staff in the URL: the default view
            browse_error = exc.reason
            page = await service.load_page(booking_id)
    except service.LinkRefused as exc:
        return _refused(exc.reason, exc.status, lang)
    b = page.booking
    chosen = pick_language(lang, b["customer_locale"], b["business_locale"])
    t = words(chosen)
    tz = b["time_zone"]
    offer = page.offer
    base = f"/b/{quote(token)}"
    if browse_error is not None:
        error, status = t[f"browse_{browse_error}"], 400
    return _html(
        "booking.html",
        status,
        lang=chosen,
        other_lang="en" if chosen == "it" else "it",
        t=t,
        b=b,
        base=base,
        lang_q=f"?{urlencode({'lang': lang})}" if lang else "",  # forms keep a chosen language
        nonce=service.form_nonce(settings.secret_key, token),
        when=format_when(b["starts_at"], tz, chosen),
        status=t.get(f"status_{b['status']}", b["status"]),
        at_risk=bool(b["at_risk"]) and page.may_change,
        done=t.get(f"done_{done}") if done in ACTIONS else None,
        error=error,
        offer=offer,
        offer_until=format_when(offer["expires_at"], tz, chosen) if offer else "",
        offer_options=[
            {**o, "when": format_when(o["starts_at"], tz, chosen)}
            for o in (offer["options"] if offer else [])
            if o["hold_status"] == "held"
        ],
        may_confirm=page.may_confirm,
        may_change=page.may_change,
        browse=_browse_view(page.browse, base, lang, chosen),
        may_move=page.may_move,
        alternatives=[
            {
                **a,
                "when": format_when(a["starts_at"], tz, chosen),
                "iso": a["starts_at"].isoformat(),
            }
            for a in page.alternatives
        ],
        waitlist=page.waitlist,
        waitlist_latest=format_when(page.waitlist["latest"], tz, chosen) if page.waitlist else "",
        feedback=page.feedback,
        segments=[{**g, "when": format_when(g["starts_at"], tz, chosen)} for g in page.segments],
        session=(
            {
                **page.session,
                "when": format_when(page.session["starts_at"], tz, chosen),
                "left": page.session["capacity"] - page.session["seats_taken"],
            }
            if page.session
            else None
        ),
        seats=b["seats"],
        may_move_visit=page.may_move_visit,
        visit_times=[
            {"when": format_when(moment, tz, chosen), "iso": moment.isoformat()}
            for moment in page.visit_times
        ],
        may_move_class=page.may_move_class,
        classes=[{**c, "when": format_when(c["starts_at"], tz, chosen)} for c in page.classes],
        series=[
            {**o, "when": format_when(o["starts_at"], tz, chosen), "this": o["id"] == b["id"]}
            for o in page.series
        ],
        journey=await customer_journey(b["id"], b["business_id"], chosen),
    )


def _browse_view(
    browse: service.Browse | None, base: str, lang: str | None, chosen: str
) -> dict[str, Any] | None:
    """The day picker and staff filter: plain links and a GET form (no script needed)."""
    if browse is None:
        return None
    staff = str(browse.staff_id) if browse.staff_id else "any"

    def url(day: date, who: str = staff) -> str:
        query = {"day": day.isoformat(), "staff": who} | ({"lang": lang} if lang else {})
        return f"{base}?{urlencode(query)}#change"

    one = timedelta(days=1)
    return {
        "day": browse.day.isoformat(),
        "day_label": format_day(browse.day, chosen),
        "chosen": browse.chosen,
        "first": browse.first_day.isoformat(),
        "last": browse.last_day.isoformat(),
        "prev": url(browse.day - one) if browse.day > browse.first_day else None,
        "next": url(browse.day + one) if browse.day < browse.last_day else None,
        "staff": staff,
        "staff_id": str(browse.staff_id) if browse.staff_id else "",
        "staff_options": [{"id": str(s["id"]), "name": s["name"]} for s in browse.staff],
        "lang": lang or "",
    }


async def _act(
    request: Request[Any, Any, Any], settings: Settings, token: str, action: str
) -> Response[Any]:
    lang = request.query_params.get("lang")
    form = {key: str(value) for key, value in (await request.form()).items()}
    try:
        booking_id = service.booking_for(settings.link_secrets, token)
        service.check_form(
            settings.secret_key,
            token,
            form.get("csrf"),
            request.headers.get("origin"),
            request.headers.get("host", ""),
        )
    except service.LinkRefused as exc:
        return _refused(exc.reason, exc.status, lang)
    try:
        await service.act(booking_id, action, form)
    except service.LinkRefused as exc:
        return _refused(exc.reason, exc.status, lang)
    except DomainError as exc:  # back to the same day and staff, with the reason
        return await _page(
            settings,
            token,
            lang,
            day=form.get("day"),
            staff=form.get("staff"),
            error=exc.detail,
            status=exc.status,
        )
    suffix = f"&lang={quote(lang)}" if lang else ""
    return Redirect(f"/b/{quote(token)}?done={action}{suffix}", status_code=303)


class SelfServiceController(Controller):
    path = "/b/{token:str}"
    include_in_schema = False
    opt = {**PUBLIC, **PAGE_LIMITED}  # each page is an availability search: rate limited

    @get("/", opt=PUBLIC)
    async def show(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        settings: NamedDependency[Settings],
    ) -> Response[str]:
        """Query: ``lang`` (it/en), ``done`` (the action just done), ``day`` (YYYY-MM-DD in
        the business's zone) and ``staff`` (a staff id or ``any``) of the free times shown.
        Read here rather than declared, so a bad value is the page's friendly 400, never
        a JSON problem document."""
        query = request.query_params
        lang = (query.get("lang") or "")[:10] or None
        return await _page(
            settings,
            token,
            lang,
            day=query.get("day"),
            staff=query.get("staff"),
            done=query.get("done"),
        )

    @get("/calendar.ics", opt=PUBLIC)
    async def calendar(
        self, token: FromPath[str], settings: NamedDependency[Settings]
    ) -> Response[Any]:
        try:
            page = await service.load_page(service.booking_for(settings.link_secrets, token))
        except service.LinkRefused as exc:
            return _refused(exc.reason, exc.status, None)
        reference = page.booking["reference_code"]
        return Response(
            service.calendar_file(page, settings.public_base_url),
            media_type="text/calendar; charset=utf-8",
            headers={
                **NO_STORE,
                "Content-Disposition": f'attachment; filename="{reference}.ics"',
            },
        )

    @post("/confirm", opt=PUBLIC, status_code=303)
    async def confirm(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        return await _act(request, settings, token, "confirm")

    @post("/cancel", opt=PUBLIC, status_code=303)
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        return await _act(request, settings, token, "cancel")

    @post("/cancel-following", opt=PUBLIC, status_code=303)
    async def cancel_following(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        """A series: cancel this appointment and every later one."""
        return await _act(request, settings, token, "cancel_following")

    @post("/change", opt=PUBLIC, status_code=303)
    async def change(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        return await _act(request, settings, token, "change")

    @post("/move-class", opt=PUBLIC, status_code=303)
    async def move_class(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        """A class booking: move the party's seats to another class of the service."""
        return await _act(request, settings, token, "move_class")

    @post("/move-visit", opt=PUBLIC, status_code=303)
    async def move_visit(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        """A visit of several services: move the whole visit to another start."""
        return await _act(request, settings, token, "move_visit")

    @post("/accept", opt=PUBLIC, status_code=303)
    async def accept(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        return await _act(request, settings, token, "accept")

    @post("/waitlist", opt=PUBLIC, status_code=303)
    async def waitlist(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        return await _act(request, settings, token, "waitlist")

    @post("/feedback", opt=PUBLIC, status_code=303)
    async def feedback(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        return await _act(request, settings, token, "feedback")
