"""Every console route is closed without a session: the key guard steps aside for them
(their credential is the session cookie), so this checks each one the app declares."""

from __future__ import annotations

import re
import uuid

from litestar.routes import HTTPRoute

from booking.app import create_app
from tests.support import World

OPEN = {("GET", "/desk/sign-in"), ("POST", "/desk/sign-in")}


def _console_operations() -> list[tuple[str, str]]:
    operations = []
    for route in create_app().routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/desk"):
            continue
        path = re.sub(
            r"\{(\w+):(\w+)\}",
            lambda m: str(uuid.uuid4()) if m.group(2) == "uuid" else "2030-01-07",
            route.path,
        )
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                operations.append((method, path))
    return operations


async def test_every_console_route_needs_a_session(world: World) -> None:
    operations = _console_operations()
    assert ("GET", "/desk") in operations
    assert ("POST", "/desk/sign-out") in operations
    client = world.client(None, follow_redirects=False)
    keyed = world.client("manager", follow_redirects=False)
    for method, path in operations:
        if (method, path) in OPEN:
            continue
        for who in (client, keyed):
            body = {"csrf": "x"} if method == "POST" else None
            answer = await who.request(method, path, data=body)
            assert answer.status_code == 303, (method, path, answer.status_code)
            assert answer.headers["location"].startswith("/desk/sign-in"), (method, path)
