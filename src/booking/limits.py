"""Request limits that hold before anything buffers a body (the outermost app middleware).

* The body is counted as it arrives: a ``Content-Length`` over ``max_body_bytes`` is
  refused before reading, a chunked body as soon as the count passes the limit
  (413 problem). Only then does any inner middleware (Idempotency-Key) see the body,
  so it never holds more than the limit.
* On routes that take a JSON body (a ``data`` parameter) a non-empty body needs a JSON
  content type (``application/json`` or ``*/*+json``), otherwise 415 problem; its
  nesting depth is checked on the raw bytes before any decoder runs (400 problem past
  ``max_json_depth``), so a deep document never reaches a recursive decoder.
"""

from __future__ import annotations

from typing import Any, cast

from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from booking.settings import get_settings

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def takes_json(handler: Any) -> bool:
    """Whether the route handler reads a JSON body (a ``data`` parameter)."""
    try:
        return "data" in handler.parsed_fn_signature.parameters
    except AttributeError:
        return False


def is_json_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether brackets nest deeper than ``limit`` (strings skipped). Cheap first: a body
    with at most ``limit`` opening brackets cannot nest deeper, so most never get scanned."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    in_string = False
    escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def too_large(limit: int) -> HTTPException:
    return HTTPException(status_code=413, detail=f"The request body may be at most {limit} bytes.")


class LimitsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fields = cast(dict[str, Any], scope)
        if fields["type"] != "http" or fields.get("method") not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        settings = get_settings()
        limit = settings.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            raise too_large(limit)
        body = await self._read_bounded(receive, limit)
        if body is None:
            return  # the client went away
        if body and takes_json(scope.get("route_handler")):
            content_type = _header(scope, b"content-type")
            if not is_json_type(content_type):
                raise HTTPException(
                    status_code=415,
                    detail="Send JSON with Content-Type: application/json.",
                )
            if json_depth_exceeds(body, settings.max_json_depth):
                raise HTTPException(
                    status_code=400,
                    detail=f"JSON may nest at most {settings.max_json_depth} levels deep.",
                )
        delivered = False

        async def replay() -> ReceiveMessage:
            nonlocal delivered
            if not delivered:
                delivered = True
                return cast(
                    ReceiveMessage, {"type": "http.request", "body": body, "more_body": False}
                )
            return await receive()  # http.disconnect when the client goes away

        await self.app(scope, replay, send)

    @staticmethod
    async def _read_bounded(receive: Receive, limit: int) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = bytes(cast(dict[str, Any], message).get("body", b""))
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
