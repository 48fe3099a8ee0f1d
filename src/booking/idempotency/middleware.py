"""The one implementation of ``Idempotency-Key`` for every state-changing POST and PATCH.

An ASGI middleware (it runs after routing, so it knows the handler) that:

* ignores requests without the header, GETs, and public handlers;
* answers 400 for an empty key or one over 255 characters;
* scopes keys per principal (an API key or a booking link); a request whose
  credential is not valid passes through untouched and the guard answers 401;
* claims the key (see :mod:`booking.idempotency.service`), runs the handler,
  and stores its answer unless it was a 5xx or a 429; a retry gets the stored
  status, headers (ETag, Location) and body, with ``Idempotent-Replayed: true``;
* makes a concurrent duplicate wait for the first to finish (up to
  ``WAIT_SECONDS``, then 409 ``idempotency-in-progress``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, cast

from litestar.connection import ASGIConnection
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from booking.access.dependencies import principal_for
from booking.access.guards import is_public
from booking.errors import DomainError, IdempotencyInProgress, MalformedRequest
from booking.idempotency import service
from booking.idempotency.service import Claimed, StoredAnswer

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
METHODS = frozenset({"POST", "PATCH"})
WAIT_SECONDS = 15.0
POLL_SECONDS = 0.05
log = logging.getLogger("booking.idempotency")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def validate_key(raw: str) -> str:
    if not raw.strip():
        raise MalformedRequest(f"{HEADER} must not be empty.", field=HEADER)
    if len(raw) > MAX_KEY_LENGTH:
        raise MalformedRequest(
            f"{HEADER} may be at most {MAX_KEY_LENGTH} characters.", field=HEADER
        )
    return raw


async def _send_stored(send: Send, answer: StoredAnswer) -> None:
    headers = [(name.encode(), value.encode("latin-1")) for name, value in answer.headers.items()]
    headers += [
        (b"content-length", str(len(answer.body)).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fields = cast(dict[str, Any], scope)
        if fields["type"] != "http" or fields.get("method") not in METHODS:
            await self.app(scope, receive, send)
            return
        handler = scope.get("route_handler")
        raw = _header(scope, b"idempotency-key")
        if raw is None or (handler is not None and is_public(handler)):
            await self.app(scope, receive, send)
            return
        key = validate_key(raw)
        try:
            principal = await principal_for(ASGIConnection(scope))
        except DomainError:
            await self.app(scope, receive, send)  # the guard answers 401 / 503
            return
        body = await self._read_body(receive)
        if body is None:
            return  # the client went away
        path = str(fields["path"])
        if query := fields.get("query_string"):
            path += "?" + bytes(query).decode("latin-1")
        subject = principal.actor_label
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            outcome = await service.claim(subject, key, str(fields["method"]), path, body)
            if isinstance(outcome, Claimed):
                break
            if isinstance(outcome, StoredAnswer):
                await _send_stored(send, outcome)
                return
            if time.monotonic() > deadline:
                raise IdempotencyInProgress(
                    "The first request with this Idempotency-Key is still running; retry shortly.",
                    retry_after=1,
                )
            await asyncio.sleep(POLL_SECONDS)
        await self._run_and_store(scope, body, send, subject, key, outcome)

    @staticmethod
    async def _read_body(receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(bytes(cast(dict[str, Any], message).get("body", b"")))
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _run_and_store(
        self, scope: Scope, body: bytes, send: Send, subject: str, key: str, claimed: Claimed
    ) -> None:
        delivered = False

        async def replay_receive() -> ReceiveMessage:
            nonlocal delivered
            if not delivered:
                delivered = True
                return cast(
                    ReceiveMessage, {"type": "http.request", "body": body, "more_body": False}
                )
            await asyncio.Event().wait()  # nothing more to read; wait to be cancelled
            raise AssertionError("unreachable")

        status = 500
        headers: dict[str, str] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", []):
                    headers[bytes(name).decode("latin-1").lower()] = bytes(value).decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
            await send(message)

        try:
            with service.resuming(claimed.resumed_since):
                await self.app(scope, replay_receive, capture)
        except BaseException:
            await asyncio.shield(service.release(subject, key, claimed.owner))
            raise
        try:
            if status >= 500 or status == 429:
                await asyncio.shield(service.release(subject, key, claimed.owner))
            else:
                answer = b"".join(chunks)
                await asyncio.shield(
                    service.complete(subject, key, claimed.owner, status, headers, answer)
                )
        except Exception:  # the answer is already sent; the claim expires on its own
            log.exception("could not store the idempotent answer for %s", key)
