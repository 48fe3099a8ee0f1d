"""The request's principal, as a Litestar dependency."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency

from booking.access.principal import Principal
from booking.access.service import authenticate
from booking.settings import Settings


def bearer_from_headers(authorization: str | None, api_key: str | None) -> str | None:
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    return api_key


def bearer(request: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    return bearer_from_headers(
        request.headers.get("authorization"), request.headers.get("x-api-key")
    )


async def principal_for(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller behind the request's credential (cached on the request), or 401."""
    state = connection.scope.setdefault("state", {})
    cached = state.get("principal")
    if isinstance(cached, Principal):
        return cached
    settings: Settings = connection.app.state.settings
    principal = await authenticate(bearer(connection), settings.link_secrets)
    state["principal"] = principal
    return principal


async def provide_principal(
    request: Request[Any, Any, Any], settings: NamedDependency[Settings]
) -> Principal:
    """``settings`` is taken only to order the dependencies: Litestar resolves
    independent dependencies of a handler concurrently in an anyio task group (a task
    per dependency, per request); as a sub-dependency it is resolved first, alone, and
    ``principal`` after it, with no task group."""
    return await principal_for(request)
