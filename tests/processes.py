"""Helpers for tests that start ``booking`` commands the way an operator does.

Each command runs as a subprocess of the installed console script, from a scratch
directory, with a minimal environment: PATH, HOME and only documented variables
(never what the test session sets for itself, such as PICCOLO_CONF).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BOOKING = str(Path(sys.executable).with_name("booking"))
# A guard against a hung child, not a timing assertion.
PATIENCE = 120.0


def minimal_env(**documented: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    env.update(documented)
    return env


def server_url(database_url: str) -> str:
    """The session database's server (postgresql://user@host:port), without a name."""
    return database_url.rpartition("/")[0]


def redis_db_url(redis_url: str, db: int) -> str:
    return f"{redis_url.rpartition('/')[0]}/{db}"


def fresh_database(server: str, name: str) -> str:
    """Drop and create ``name`` on ``server``; return its URL."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(f"{server}/postgres")
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 "
                "AND pid <> pg_backend_pid()",
                name,
            )
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(run())
    return f"{server}/{name}"


def drop_database(server: str, name: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(f"{server}/postgres")
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 "
                "AND pid <> pg_backend_pid()",
                name,
            )
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            await conn.close()

    asyncio.run(run())


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run(args: list[str], env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``booking ARGS`` to completion."""
    return subprocess.run(
        [BOOKING, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str) -> re.Match[str]:
        """The first match of ``pattern`` in the output; fails if the process dies first."""
        deadline = time.monotonic() + PATIENCE
        while True:
            text = self.output()
            match = re.search(pattern, text)
            if match:
                return match
            if self.process.poll() is not None:
                raise AssertionError(
                    f"process exited ({self.process.returncode}) before {pattern!r}:\n"
                    + text[-4000:]
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} after {PATIENCE} s:\n" + text[-4000:])
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextmanager
def started(
    args: list[str], env: Mapping[str, str], cwd: Path, log: Path, *, program: str = BOOKING
) -> Iterator[Running]:
    """Start ``booking ARGS`` (stdout and stderr to ``log``); stop it on exit."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [program, *args], env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
    running = Running(process, log)
    try:
        yield running
    finally:
        running.stop()


def wait_http_ok(url: str, process: Running) -> None:
    import httpx

    deadline = time.monotonic() + PATIENCE
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{url} never answered 200:\n" + process.output()[-4000:])
        time.sleep(0.1)
