"""HTTP for staff sign-in: the API that issues a sign-in, the sign-in page, sign-out."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.response import Redirect
from msgspec import Meta, Struct

from booking.access.guards import requires
from booking.access.principal import Principal
from booking.access.tokens import same_secret
from booking.console import session as sessions
from booking.console.i18n import words
from booking.console.web import (
    CONSOLE,
    CONSOLE_EXCEPTION_HANDLERS,
    STAFF_DEPENDENCIES,
    _env,
    cleared_cookie,
    html,
    is_https,
    language,
    safe_next,
    same_origin,
    session_cookie,
)
from booking.settings import Settings
from booking.wire_time import common_zone, localize

PRE_COOKIE = "booking_staff_pre"  # binds the sign-in form to this browser (login CSRF)


class SignInCreate(Struct, forbid_unknown_fields=True):
    api_key_id: Annotated[
        UUID | None, Meta(description="A staff key to sign in as; omitted: a new key.")
    ] = None
    business_id: Annotated[
        UUID | None, Meta(description="For a new key: its business (a manager's own).")
    ] = None
    role: Literal["front_desk", "manager"] = "front_desk"
    label: Annotated[str, Meta(max_length=100, description="The desk's name.")] = ""


class SignInIssued(Struct):
    id: UUID
    code: Annotated[str, Meta(description="One use, shown this once, e.g. K7QM-4XPD.")]
    link: Annotated[str, Meta(description="Opens the sign-in page with the code filled in.")]
    api_key_id: UUID
    expires_at: datetime
    time_zone: str = "UTC"


class StaffSignInController(Controller):
    path = "/v1/staff-sign-ins"
    tags = ["access"]

    @post(
        summary="Issue a one-time sign-in code and link for a staff console (e.g. /desk)",
        description=(
            "A manager signs in a staff key of their business (api_key_id), or a new "
            "front_desk/manager key made for the desk (label names it). The code works "
            "once, for 15 minutes; the session it opens lasts one shift (12 h, 2 h idle) "
            "and ends when the key is revoked."
        ),
        status_code=201,
        opt=requires(kinds=("admin", "staff")),
    )
    async def issue(
        self,
        data: JSONBody[SignInCreate],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> SignInIssued:
        issued = await sessions.issue_sign_in(
            principal,
            base_url=settings.public_base_url,
            api_key_id=data.api_key_id,
            business_id=data.business_id,
            role=data.role,
            label=data.label,
        )
        tz = await common_zone(principal.business_ids or ())
        out = SignInIssued(
            id=issued.id,
            code=issued.code,
            link=issued.link,
            api_key_id=issued.api_key_id,
            expires_at=issued.expires_at,
            time_zone=tz.key,
        )
        return localize(out, tz)


def _pre_token(secret_key: str, nonce: str) -> str:
    return hmac.new(secret_key.encode(), f"sign-in:{nonce}".encode(), hashlib.sha256).hexdigest()


def _sign_in_page(
    request: Request[Any, Any, Any],
    settings: Settings,
    *,
    code: str = "",
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response[str]:
    lang = language(request, None)
    nonce = secrets.token_urlsafe(16)
    response = html(
        _env,
        "sign_in.html",
        status,
        lang=lang,
        t=words(lang),
        code=code,
        error=error,
        notice=notice,
        csrf=_pre_token(settings.secret_key, nonce),
        next=safe_next(request.query_params.get("next")),
    )
    response.set_cookie(
        Cookie(
            key=PRE_COOKIE,
            value=nonce,
            path="/desk/sign-in",
            httponly=True,
            samesite="strict",
            secure=is_https(request),
            max_age=3600,
        )
    )
    if lang_asked := request.query_params.get("lang"):
        response.set_cookie(Cookie(key="booking_lang", value=lang_asked[:2], path="/"))
    return response


class ConsoleSignInController(Controller):
    path = "/desk"
    include_in_schema = False
    opt = CONSOLE
    dependencies = STAFF_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    @get("/sign-in", opt=CONSOLE)
    async def sign_in_form(
        self, request: Request[Any, Any, Any], settings: NamedDependency[Settings]
    ) -> Response[str]:
        """Query: ``code`` (from a sign-in link: filled in, one press to sign in),
        ``next`` (a path to return to), ``lang``. Showing the page uses nothing up:
        link previews cannot spend a code."""
        query = request.query_params
        notice = words(language(request, None))["signed_out"] if query.get("out") else None
        return _sign_in_page(request, settings, code=(query.get("code") or "")[:20], notice=notice)

    @post("/sign-in", opt=CONSOLE, status_code=303)
    async def sign_in(
        self, request: Request[Any, Any, Any], settings: NamedDependency[Settings]
    ) -> Response[Any]:
        form = await request.form()
        nonce = request.cookies.get(PRE_COOKIE, "")
        sent = str(form.get("csrf") or "")
        t = words(language(request, None))
        if (
            not same_origin(request)
            or not nonce
            or not same_secret(sent, _pre_token(settings.secret_key, nonce))
        ):
            return _sign_in_page(request, settings, error=t["csrf_refused"], status=403)
        token = await sessions.redeem_sign_in(str(form.get("code") or "")[:40])
        if token is None:
            return _sign_in_page(request, settings, error=t["sign_in_refused"], status=400)
        response: Response[Any] = Redirect(
            safe_next(str(form.get("next") or "")), status_code=303
        )
        response.set_cookie(session_cookie(request, token))
        response.delete_cookie(PRE_COOKIE, path="/desk/sign-in")
        return response

    @post("/sign-out", opt=CONSOLE, status_code=303)
    async def sign_out(
        self, request: Request[Any, Any, Any], staff: NamedDependency[sessions.StaffSession]
    ) -> Response[Any]:
        await sessions.sign_out(staff.id)
        response: Response[Any] = Redirect("/desk/sign-in?out=1", status_code=303)
        response.set_cookie(cleared_cookie(request))
        return response
