"""How the API process serves HTTP: uvicorn, with a header-read deadline and a connection cap.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but it arms no
timer while a request's headers are still arriving (and every received byte cancels the
keep-alive timer), so a client that never finishes its headers holds a connection
forever (issue 18, finding 5). :class:`HeaderDeadlineProtocol` is uvicorn's own httptools
protocol with one addition: from a connection's first moment, and again from the first
byte of each next request on it, the headers must be complete within
``header_timeout_seconds``; otherwise the server answers 408 and closes the connection.
Trickling one byte at a time does not extend the deadline.

The cap on concurrent connections is uvicorn's ``limit_concurrency``: past it, a new
request gets a 503 at once instead of queueing. uvicorn's own 503 is plain text, so the
protocol makes the same check itself and answers an RFC 9457 problem
(``/problems/over-capacity``, ``Retry-After: 1``, connection closed). Chosen over another server
(hypercorn, granian) because uvicorn is already what runs and is tested here, and the one
missing piece is this small subclass.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import sys
from typing import Any

from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from booking.errors import PROBLEM_BASE
from booking.settings import get_settings

_TIMEOUT_BODY = b"The request headers did not arrive in time.\n"
REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n\r\n"
) + _TIMEOUT_BODY


OVER_CAPACITY = json.dumps(
    {
        "type": PROBLEM_BASE + "over-capacity",
        "title": "Too many connections",
        "status": 503,
        "detail": "This server process is at its connection limit; please retry shortly.",
    }
).encode()


async def over_capacity(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    """The answer past the connection cap: an RFC 9457 problem, then the connection closes."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(OVER_CAPACITY)).encode()),
                (b"retry-after", b"1"),
                (b"x-content-type-options", b"nosniff"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": OVER_CAPACITY, "more_body": False})


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose headers never finish and
    answering a problem document past the connection cap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = float(get_settings().header_timeout_seconds)
        self._header_deadline: asyncio.TimerHandle | None = None
        # The cap is checked here, not by uvicorn (whose 503 is plain text).
        self.connection_cap: int | None = self.limit_concurrency
        self.limit_concurrency = None

    def _over_cap(self) -> bool:
        cap = self.connection_cap
        return cap is not None and (len(self.connections) >= cap or len(self.tasks) >= cap)

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None and self.header_timeout > 0:
            self._header_deadline = self.loop.call_later(
                self.header_timeout, self._headers_too_slow
            )

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.write(REQUEST_TIMEOUT)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()  # the next request on a keep-alive connection

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        if not self._over_cap():
            super().on_headers_complete()
            return
        self.logger.warning("Exceeded concurrency limit.")
        # uvicorn starts (or queues) the request cycle with ``self.app`` inside this call.
        app, self.app = self.app, over_capacity
        try:
            super().on_headers_complete()
        finally:
            self.app = app


def uvicorn_options() -> dict[str, Any]:
    """The server settings ``booking api`` passes to ``uvicorn.run``."""
    settings = get_settings()
    return {
        "http": HeaderDeadlineProtocol,
        "limit_concurrency": settings.max_connections or None,
        "timeout_keep_alive": settings.keep_alive_seconds,
    }


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(mmap_threshold: int = 8 << 20, trim_threshold: int = 32 << 20) -> bool:
    """Let the C allocator keep and reuse freed memory instead of handing it back to the
    kernel after every large request; whether it was set (glibc only).

    By default glibc returns the top of the heap once more than ~2 MB of it is free, and a
    request that reads and answers a megabyte (BatchAvailabilityLookup: 0.9 MB in, 1 MB out)
    frees that much: the next one faults the same pages in again, ~520 page faults (~0.5 ms)
    only to build its answer (bench/RESULTS.md, 2026-12-02 market16b). Allocations below
    ``mmap_threshold`` come from the heap, and up to ``trim_threshold`` of free heap is kept:
    the process keeps at most that much more resident than it uses.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, mmap_threshold) and mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    )
