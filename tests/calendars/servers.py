"""Real calendar servers for the calendar tests, on 127.0.0.1.

* :func:`start_radicale`: Radicale (the CalDAV server from PyPI) as a subprocess with its
  storage in a temporary folder, any user name accepted (``auth type = none``; each user
  sees only their own calendars).
* :class:`IcsServer`: an aiohttp server whose paths serve what a test puts there (a body
  with an ETag honouring If-None-Match, a redirect, an endless body, an error status).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from tests.support import ROOT, free_port


def _port(env: str) -> int:
    """A fixed port from the environment (e.g. a developer's assigned range), else a free one."""
    value = os.environ.get(env)
    return int(value) if value else free_port()


@contextmanager
def start_radicale() -> Iterator[str]:
    port = _port("BOOKING_TEST_RADICALE_PORT")
    with tempfile.TemporaryDirectory(prefix="radicale-") as storage:
        log_path = ROOT / ".local" / "test-radicale.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "radicale",
                    f"--server-hosts=127.0.0.1:{port}",
                    f"--storage-filesystem-folder={storage}",
                    "--auth-type=none",
                    "--rights-type=owner_only",
                    "--logging-level=warning",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            "Radicale did not start:\n" + log_path.read_text()[-2000:]
                        ) from None
                    time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@dataclass
class Served:
    body: bytes = b""
    status: int = 200
    location: str | None = None
    endless: bool = False  # stream chunks until the client stops reading
    content_type: str = "text/calendar"


@dataclass
class IcsServer:
    paths: dict[str, Served] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # path, If-None-Match
    base_url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{name:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = _port("BOOKING_TEST_ICS_PORT")
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def put(self, path: str, served: Served) -> str:
        self.paths[path] = served
        return f"{self.base_url}/{path}"

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.requests.append((name, request.headers.get("If-None-Match")))
        served = self.paths.get(name)
        if served is None:
            return web.Response(status=404)
        if served.location is not None:
            return web.Response(status=302, headers={"Location": served.location})
        if served.endless:
            response = web.StreamResponse(headers={"Content-Type": served.content_type})
            await response.prepare(request)
            chunk = b"X" * 65536
            try:
                for _ in range(800):  # 50 MB
                    await response.write(chunk)
                    await asyncio.sleep(0)
            except (ConnectionResetError, RuntimeError):
                pass
            return response
        etag = '"' + hashlib.sha256(served.body).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=served.body,
            status=served.status,
            headers={"ETag": etag, "Content-Type": served.content_type},
        )


@pytest.fixture
async def ics_server() -> AsyncIterator[IcsServer]:
    """A published-calendar (ICS) server on 127.0.0.1 for one test."""
    server = IcsServer()
    await server.start()
    yield server
    await server.stop()
