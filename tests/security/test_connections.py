"""Finding 5 of issue 18: connections that never finish their headers are closed, and a
process holds at most ``BOOKING_MAX_CONNECTIONS`` at once.

Real ``booking api`` processes (uvicorn with booking.serving's protocol) on raw sockets.
The socket timeouts below are guards against a hung test, not timing assertions: the test
asserts what the server sends (a 408 and the close), not how fast.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.security.conftest import StrictApi, own_api

GUARD_SECONDS = 60.0


@pytest.fixture(scope="module")
def short_header_api(database_url: str) -> Iterator[StrictApi]:
    with own_api("header-timeout", BOOKING_HEADER_TIMEOUT_SECONDS="2") as api:
        yield api


@pytest.fixture(scope="module")
def capped_api(database_url: str) -> Iterator[StrictApi]:
    with own_api(
        "capped",
        BOOKING_MAX_CONNECTIONS="4",
        BOOKING_HEADER_TIMEOUT_SECONDS="120",
        BOOKING_KEEP_ALIVE_SECONDS="120",
    ) as api:
        yield api


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD_SECONDS)
    sock.settimeout(GUARD_SECONDS)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return received
        received += chunk


def test_a_connection_whose_headers_never_finish_is_closed(short_header_api: StrictApi) -> None:
    with _connect(short_header_api.port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Never: ")  # no blank line
        answer = _read_until_closed(sock)  # a server that holds it fails the guard timeout
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout")


def test_a_connection_that_sends_nothing_is_closed(short_header_api: StrictApi) -> None:
    with _connect(short_header_api.port) as sock:
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408")


def test_trickling_header_bytes_does_not_extend_the_deadline(
    short_header_api: StrictApi,
) -> None:
    """One byte every 0.2 s would take minutes to finish the headers; the server closes
    the connection first (uvicorn alone resets its keep-alive timer on every byte)."""
    trickle = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 2000
    closed = False
    with _connect(short_header_api.port) as sock:
        for byte in trickle:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.2)
            sock.setblocking(False)
            try:
                if sock.recv(4096).startswith(b"HTTP/1.1 408"):
                    closed = True
                    break
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
                sock.settimeout(GUARD_SECONDS)
    assert closed, "the server kept a trickling connection open for the whole header"


def test_a_complete_request_on_the_same_server_is_served(short_header_api: StrictApi) -> None:
    with _connect(short_header_api.port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200")


def test_connections_past_the_cap_get_503(capped_api: StrictApi) -> None:
    with contextlib.ExitStack() as stack:
        # Three connections, each served once and then held open (keep-alive) ...
        for _ in range(3):
            sock = stack.enter_context(_connect(capped_api.port))
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        # ... and the fourth concurrent one (cap 4, uvicorn counts it too) is refused.
        over = httpx.get(f"{capped_api.base_url}/health", timeout=GUARD_SECONDS)
        assert over.status_code == 503
        # An RFC 9457 problem like every other error, not uvicorn's plain text.
        assert over.headers["content-type"] == "application/problem+json"
        assert over.headers["retry-after"] == "1"
        assert over.headers["connection"] == "close"
        problem = over.json()
        assert problem["type"] == "/problems/over-capacity"
        assert problem["status"] == 503
        assert problem["title"]
        assert problem["detail"]
    # The held connections gone, the process serves again.
    for _ in range(100):
        if httpx.get(f"{capped_api.base_url}/health", timeout=GUARD_SECONDS).status_code == 200:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the capped API did not serve again after the connections closed")
