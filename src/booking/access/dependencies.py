"""The request's principal, as a Litestar dependency."""

from __future__ import annotations

from typing import Any

from litestar import Request

from booking.access.principal import Principal
from booking.access.service import authenticate
from booking.settings import Settings


def bearer(request: Request[Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    return request.headers.get("x-api-key")


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    cached = request.scope.get("state", {}).get("principal")
    if isinstance(cached, Principal):
        return cached
    settings: Settings = request.app.state.settings
    principal = await authenticate(bearer(request), settings.secret_key)
    request.scope.setdefault("state", {})["principal"] = principal
    return principal
