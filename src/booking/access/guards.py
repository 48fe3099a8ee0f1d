"""Authorization in one place: a guard every route passes through.

Every endpoint is closed by default: the guard resolves the caller (401 for a
missing, invalid or revoked key), applies the caller's rate limit (429), then
checks what the handler declares in ``opt``:

* ``opt=PUBLIC`` or ``security=[{}]`` (OpenAPI's "anonymous allowed") — no
  credentials needed (health, readiness, the OpenAPI document, Twilio webhooks
  that verify their own signature, public customer pages that read a token
  from the URL).
* ``opt=requires(scope=..., kinds=...)`` — the caller must hold the scope
  (staff and admin hold every scope) and/or be one of the kinds (403 otherwise).

Tenant checks need the row (which business, which partner made the booking),
so services finish the job with :meth:`Principal.require` /
:meth:`Principal.may_see_booking`, answering 404 for another tenant's data.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from booking.access.dependencies import principal_for
from booking.access.principal import SCOPES, Principal
from booking.access.ratelimit import client_subject, hit, link_subject
from booking.errors import Forbidden, Unauthenticated
from booking.settings import Settings

ACCESS_OPT = "access"
PUBLIC: dict[str, Any] = {ACCESS_OPT: "public"}
# ``opt`` of the public customer pages (a token in the path): limited per link and address.
RATE_LIMIT_OPT = "rate_limit"
PAGE_LIMITED: dict[str, Any] = {RATE_LIMIT_OPT: "page"}


def requires(scope: str | None = None, *, kinds: Iterable[str] = ()) -> dict[str, Any]:
    """``opt`` for a handler that needs ``scope`` and/or one of ``kinds`` of caller."""
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    return {ACCESS_OPT: "key", "scope": scope, "kinds": tuple(kinds)}


def is_public(handler: BaseRouteHandler) -> bool:
    """Declared public: ``opt=PUBLIC``, or an empty requirement (``security=[{}]``), which is
    how OpenAPI says "no credentials needed" - so the document and the guard cannot disagree."""
    if handler.opt.get(ACCESS_OPT) == "public":
        return True
    resolve = getattr(handler, "resolve_security", None)
    return resolve is not None and any(not requirement for requirement in resolve())


def check_declared(principal: Principal, opt: dict[str, Any]) -> None:
    kinds: tuple[str, ...] = tuple(opt.get("kinds") or ())
    if kinds and principal.kind not in kinds:
        raise Forbidden(f"A {principal.kind} credential cannot do this.")
    scope = opt.get("scope")
    if scope and (principal.kind == "customer" or not principal.has_scope(scope)):
        raise Forbidden(f"This key lacks the scope {scope!r}.")


async def authorize(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The app-wide guard (registered by :class:`booking.api_plugin.AccessPlugin`)."""
    settings: Settings = connection.app.state.settings
    redis = getattr(connection.app.state, "redis", None)
    address = connection.client.host if connection.client else None
    if is_public(handler):
        if handler.opt.get(RATE_LIMIT_OPT) == "page" and redis is not None:
            await _limit_page(redis, connection, address, settings.page_rate_limit_per_minute)
        return
    try:
        principal = await principal_for(connection)
    except Unauthenticated:
        # Missing or failed credentials count against the client's address: a flood of
        # them is answered 429 (without saying whether a key would have worked).
        if redis is not None:
            await hit(
                redis,
                client_subject("anon", address),
                settings.anonymous_rate_limit_per_minute,
                who="A client without a valid key",
            )
        raise
    limit = (
        principal.rate_limit if principal.rate_limit is not None else settings.rate_limit_per_minute
    )
    if redis is not None and limit > 0:
        await hit(redis, principal.rate_limit_subject, limit)
    check_declared(principal, handler.opt)


async def _limit_page(
    redis: Any, connection: ASGIConnection[Any, Any, Any, Any], address: str | None, limit: int
) -> None:
    """A public page: each link, and each client address, gets ``limit`` a minute. The
    address gets five times the link's budget: customers behind one NAT share it."""
    token = str(connection.path_params.get("token", ""))
    if token:
        await hit(redis, link_subject(token), limit, who="One booking link")
    await hit(redis, client_subject("page", address), limit * 5, who="One address")
