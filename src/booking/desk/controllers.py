"""HTTP for the desk: pages for a signed-in staff session (booking.console.web)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency

from booking.console.i18n import words
from booking.console.session import StaffSession
from booking.console.web import (
    CONSOLE,
    CONSOLE_EXCEPTION_HANDLERS,
    STAFF_DEPENDENCIES,
    html,
    language,
    template_env,
)
from booking.desk import service
from booking.desk.i18n import DESK

_env = template_env("booking.desk")


async def _context(request: Request[Any, Any, Any], staff: StaffSession) -> dict[str, Any]:
    business = await service.load_business(staff.business_id)
    lang = language(request, business.locale)
    return {"lang": lang, "t": words(lang, DESK), "business": business, "staff": staff}


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
        values = await _context(request, staff)
        q = (request.query_params.get("q") or "")[:100]
        return html(
            _env, "find.html", page="find", title=values["t"]["desk_title"], q=q, results=[],
            **values,
        )
