"""Every route, with secrets and path values written in anything but ASCII: refused with
a 4xx (or answered), never a 500. Covers what the OpenAPI fuzzing does not see - the
self-service pages, the desk console, the calendar feeds - and the credentials every
route reads: a Bearer key, Basic credentials, a form's csrf or nonce.

Found on 2026-12-03 by fuzzing a running demo: ``hmac.compare_digest`` raises TypeError
for a str with a non-ASCII character, and ``base64.b64decode`` a ValueError that the
Basic parser did not catch."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support import World

# A /b/ token whose MAC is not ASCII; anything else that a path holds as text.
_TEXT = {"token": f"bt.{'0' * 32}.1999999999.ñé", "": "ñé"}
_PARAM = re.compile(r"\{(\w+):(\w+)\}")


def _concrete(path: str, world: World) -> str:
    def value(match: re.Match[str]) -> str:
        name, kind = match.groups()
        if kind == "uuid":
            return str(world.business_id) if name == "business_id" else str(world.staff[0])
        if kind == "date":
            return "2026-12-24"
        if kind == "int":
            return "1"
        return _TEXT.get(name, _TEXT[""])

    return _PARAM.sub(value, path)


async def test_no_route_answers_a_non_ascii_secret_with_a_5xx(world: World) -> None:
    from booking.app import create_app

    routes = [
        (method, _concrete(route.path, world))
        for route in create_app().routes
        for method in sorted(getattr(route, "methods", ()))
        if method not in ("HEAD", "OPTIONS") and not route.path.startswith("/schema")
    ]
    assert len(routes) > 100  # the whole API, the pages and the console
    credentials: list[list[tuple[bytes, bytes]]] = [
        [(b"authorization", "Bearer bk_ñé_ñé".encode())],
        [(b"authorization", "Basic ñé".encode())],
        [(b"authorization", f"Bearer {world.keys['manager']}".encode())],
        [(b"cookie", "booking_staff=ñé; booking_staff_pre=ñé".encode())],
    ]
    form = {"csrf": "ñé" * 16, "code": "ÑÉÑÉ-ÑÉÑÉ", "nonce": "ñé"}
    seen: dict[str, list[int]] = {}
    async with httpx.AsyncClient(base_url=world.base_url, timeout=30) as client:
        for method, path in routes:
            for headers in credentials:
                sent: dict[str, Any] = {"headers": [*headers, (b"origin", world.base_url.encode())]}
                if method in ("POST", "PUT", "PATCH"):
                    sent["data"] = form
                answer = await client.request(method, path, **sent)
                seen.setdefault(f"{method} {path}", []).append(answer.status_code)
    errors = {route: codes for route, codes in seen.items() if any(c >= 500 for c in codes)}
    assert errors == {}
