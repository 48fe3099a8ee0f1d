"""The API under test: `booking api` (uvicorn) as its own process on 127.0.0.1.

The process gets production settings (debug off, the default pool size, access
log off as a production deployment behind a proxy would have it) and talks to
the real PostgreSQL and Redis of the local stack.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def python_path(*dirs: Path) -> Iterator[None]:
    """PYTHONPATH with ``dirs`` put first while the block runs, for the API and
    `booking migrate` subprocesses it starts (another tree's code and migrations)."""
    if not dirs:
        yield
        return
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([*map(str, dirs), *([before] if before else [])])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def server_env(database_url: str, redis_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BOOKING_")}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        BOOKING_SECRET_KEY="bench-secret-not-for-production",
        BOOKING_SMS_BACKEND="console",
        BOOKING_LOG_LEVEL="WARNING",
        PICCOLO_CONF="booking.piccolo_conf",
    )
    return env


def wait_healthy(base: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"API did not start (exit {process.returncode})")
        time.sleep(0.1)


@contextmanager
def running_api(
    database_url: str,
    redis_url: str,
    *,
    workers: int = 1,
    profile_to: Path | None = None,
    log_path: Path | None = None,
    extra_env: dict[str, str] | None = None,
    quiet: bool = True,
) -> Iterator[str]:
    """Start `booking api --workers N`; yields its base URL; stops it afterwards.

    ``extra_env`` overrides the production-like environment (e.g. BOOKING_METRICS=0);
    ``quiet=False`` drops ``--quiet`` (which turns the access log off).

    With ``profile_to`` the server runs under ``py-spy record`` (one worker) and
    the raw collapsed stacks are written there when it stops.
    """
    port = free_port()
    command = [str(BIN / "booking"), "api", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)] + (["--quiet"] if quiet else [])
    if profile_to is not None:
        command = [
            str(BIN / "py-spy"),
            "record",
            "--format",
            "raw",
            "--rate",
            "250",
            "--output",
            str(profile_to),
            "--",
            *command,
        ]
    log = (log_path or ROOT / ".local" / "bench-api.log").open("w")
    process = subprocess.Popen(
        command,
        env=server_env(database_url, redis_url) | (extra_env or {}),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process)
        yield base
    finally:
        target = process.pid
        if profile_to is not None:  # stop the server; py-spy writes when it exits
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text()
            target = int(children.split()[0]) if children.split() else process.pid
        os.kill(target, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
