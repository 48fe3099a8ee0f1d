"""Signing a console in, as a manager would hand a desk its code."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support import World

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def issue_code(world: World, **body: Any) -> dict[str, Any]:
    async with world.client("manager") as manager:
        response = await manager.post("/v1/staff-sign-ins", json=body or {"label": "Counter 1"})
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found is not None, page[:500]
    return found.group(1)


async def signed_in_client(world: World, **body: Any) -> httpx.AsyncClient:
    """A browser-like client (cookies kept) signed in at /desk with a fresh code."""
    issued = await issue_code(world, **body)
    client = world.client(None, follow_redirects=False)
    form_page = await client.get("/desk/sign-in", params={"code": issued["code"]})
    assert form_page.status_code == 200
    answer = await client.post(
        "/desk/sign-in", data={"code": issued["code"], "csrf": csrf_of(form_page.text)}
    )
    assert answer.status_code == 303, answer.text
    return client
