"""Security headers on every response, set in one place (issue 18, finding 9).

Every response gets ``X-Content-Type-Options: nosniff``. Every HTML page (the customer's
``/b/`` pages, the landing page, the API docs, and any console page added later) also gets a
Content-Security-Policy with ``frame-ancestors 'none'`` (plus ``X-Frame-Options: DENY`` for
old browsers) and ``Referrer-Policy: no-referrer`` (a page's URL may carry a booking link's
token). A handler that sets one of these headers itself keeps its own value.

The pages' policy allows only this origin: no inline or remote script, inline ``<style>``
(the pages' stylesheet is inline), forms posting back here. The Swagger UI page at
``/schema`` starts itself with an inline script, so its policy also allows inline script and
``data:`` images; its assets are served by this app, so it works offline.
"""

from __future__ import annotations

from typing import Any, cast

from litestar.types import Message, Scope

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; form-action 'self'; base-uri 'none'; object-src 'none'; "
    "frame-ancestors 'none'"
)
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'; frame-ancestors 'none'"
)
DOCS_PREFIX = "/schema"
ALWAYS: tuple[tuple[bytes, bytes], ...] = ((b"x-content-type-options", b"nosniff"),)


def page_headers(path: str) -> tuple[tuple[bytes, bytes], ...]:
    """The headers an HTML page at ``path`` gets."""
    csp = DOCS_CSP if path == DOCS_PREFIX or path.startswith(DOCS_PREFIX + "/") else PAGE_CSP
    return (
        (b"content-security-policy", csp.encode()),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
    )


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    for key, value in headers:
        if key.lower() == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"text/html"
    return False


async def add_security_headers(message: Message, scope: Scope) -> None:
    """Litestar ``before_send`` hook: it sees every answer, including the router's own 404
    and 405 (which no route middleware sees) and every error."""
    if message["type"] != "http.response.start":
        return
    fields = cast(dict[str, Any], message)
    headers = [(bytes(k), bytes(v)) for k, v in fields.get("headers", [])]
    present = {key.lower() for key, _ in headers}
    path = str(cast(dict[str, Any], scope).get("path", ""))
    wanted = ALWAYS + (page_headers(path) if _is_html(headers) else ())
    headers.extend((key, value) for key, value in wanted if key not in present)
    fields["headers"] = headers
