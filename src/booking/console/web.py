"""HTTP glue for the staff consoles: the session as a dependency, CSRF, cookies, pages.

A console handler is declared ``opt=CONSOLE`` (the API's key guard lets it through: the
credential is the session cookie, checked here) and takes the session as a dependency::

    @get("/desk", opt=CONSOLE)
    async def home(self, staff: NamedDependency[StaffSession]) -> Response[str]: ...

Controllers add ``dependencies=STAFF_DEPENDENCIES`` and
``exception_handlers=CONSOLE_EXCEPTION_HANDLERS``. Without a live session a page is
redirected to the sign-in (303, back to the page afterwards); a script's request
(``X-Console: 1``) gets a 401 it can act on. Every unsafe request (POST) must carry the
session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``) and, when the
browser sends one, an ``Origin`` of this host: else 403, nothing done.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape
from litestar import MediaType, Request, Response
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.response import Redirect
from litestar.types import ExceptionHandlersMap

from booking.access.guards import PUBLIC
from booking.console.i18n import pick_language, words
from booking.console.session import SESSION_COOKIE, StaffSession, check_csrf, session_for
from booking.settings import Settings

CONSOLE: dict[str, Any] = PUBLIC  # the key guard steps aside; the session dependency decides
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}
STATIC_PATH = "/console/static"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def static_directory() -> Path:
    return Path(str(files("booking.console") / "static"))


class SignInRequired(Exception):
    """No live session (none, expired, signed out, key revoked)."""


class CsrfRefused(Exception):
    """An unsafe request without this session's token, or from another origin."""


def template_env(*packages: str) -> Environment:
    """Templates of the given packages first, then the console's own (``console_base.html``)."""
    loaders = [PackageLoader(package, "templates") for package in (*packages, "booking.console")]
    return Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape(["html"]))


_env = template_env()


def html(
    env: Environment, template: str, status: int = 200, **values: Any
) -> Response[str]:
    body = env.get_template(template).render(static=STATIC_PATH, **values)
    return Response(body, status_code=status, media_type=MediaType.HTML, headers=NO_STORE)


def language(request: Request[Any, Any, Any], business_locale: str | None) -> str:
    """``?lang=`` (remembered in a cookie), then the business's language, then English."""
    asked = request.query_params.get("lang") or request.cookies.get("booking_lang")
    return pick_language(asked, business_locale)


def same_origin(request: Request[Any, Any, Any]) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def is_https(request: Request[Any, Any, Any]) -> bool:
    return (
        request.url.scheme == "https"
        or request.headers.get("x-forwarded-proto", "").lower() == "https"
    )


def session_cookie(request: Request[Any, Any, Any], token: str) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value=token,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def cleared_cookie(request: Request[Any, Any, Any]) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value="",
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
        max_age=0,
    )


async def provide_staff_session(
    request: Request[Any, Any, Any], settings: NamedDependency[Settings]
) -> StaffSession:
    """The signed-in staff session, with CSRF checked for unsafe methods."""
    session = await session_for(request.cookies.get(SESSION_COOKIE), settings.secret_key)
    if session is None:
        raise SignInRequired
    if request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token")
        if sent is None:
            sent = str((await request.form()).get("csrf") or "") or None
        if not same_origin(request) or not check_csrf(session, sent):
            raise CsrfRefused
    return session


STAFF_DEPENDENCIES = {"staff": Provide(provide_staff_session)}


def _sign_in_required(request: Request[Any, Any, Any], _: Exception) -> Response[Any]:
    if request.headers.get("x-console") == "1":
        return Response(
            "signed out", status_code=401, media_type=MediaType.TEXT, headers=NO_STORE
        )
    target = request.url.path
    if request.method in SAFE_METHODS and request.url.query:
        target += "?" + request.url.query
    return Redirect(f"/desk/sign-in?next={quote(target, safe='')}", status_code=303)


def _csrf_refused(request: Request[Any, Any, Any], _: Exception) -> Response[str]:
    lang = language(request, None)
    t = words(lang)
    return html(_env, "console_refused.html", 403, lang=lang, t=t, message=t["csrf_refused"])


CONSOLE_EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    SignInRequired: _sign_in_required,
    CsrfRefused: _csrf_refused,
}


def safe_next(raw: str | None) -> str:
    """Only a path on this site (never ``//host`` or a scheme) is followed after sign-in."""
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return "/desk"


def console_static_files() -> Any:
    """The consoles' own CSS and script, served by the app (no CDN, no build step)."""
    from litestar.datastructures import CacheControlHeader
    from litestar.static_files import create_static_files_router

    return create_static_files_router(
        path=STATIC_PATH,
        directories=[static_directory()],
        name="console-static",
        opt=PUBLIC,
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=300, public=True),
    )
