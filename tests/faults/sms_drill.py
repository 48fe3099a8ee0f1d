"""The notification drills' rig: private servers and the pipeline's processes.

Each part is a real process on 127.0.0.1, started and stopped by the drill:

* a private PostgreSQL and Redis (booking.localstack on free ports, in a
  temporary directory; the shared servers are never touched), migrated once;
* the API (`booking api`), which the drills book through;
* the worker (tests/faults/drill_worker.py: the production worker with
  drill-sized timeouts), which can be SIGKILLed and started again;
* the fake Twilio (`python -m tests.fakes.fake_twilio`), whose
  ``/_fake/messages`` and ``/_fake/requests`` are the count of record.

Every process and the temporary directory are cleaned up on the way out, pass
or fail; BOOKING_KEEP_FAULT_DIRS=1 keeps the directory (api.log, worker-*.log).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from booking import localstack
from tests.fakes.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.support import days_ahead, rome

FROM_NUMBER = "+15005550006"
PHONE_PREFIX = "+39347"
SLOTS_PER_DAY = 40  # 01:00-21:00 local, every 30 minutes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_for(
    what: str, check: Callable[[], Awaitable[bool]], *, within: float, every: float = 0.05
) -> float:
    """Poll ``check`` until it holds; seconds it took. Fails with ``what`` after ``within``."""
    began = time.monotonic()
    while not await check():
        if time.monotonic() - began > within:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(every)
    return time.monotonic() - began


# --------------------------------------------------------------------------- servers


@dataclass
class SmsStack:
    root: Path
    stack: localstack.LocalStack
    database_url: str
    redis_db: int = 0

    @property
    def redis_url(self) -> str:
        return self.stack.redis_url(self.redis_db)

    def redis_pid(self) -> int:
        return int((self.root / "redis" / "redis.pid").read_text().split()[0])

    def redis_port_open(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", self.stack.redis_port)) == 0

    def stop_redis(self, *, keep_data: bool = True) -> None:
        """Stop Redis: ``SHUTDOWN SAVE`` (the queue comes back on restart, as with a
        persistent Redis), or SIGKILL with ``keep_data=False`` (this Redis runs without
        persistence, so it comes back empty)."""
        if keep_data:
            address = ["-h", "127.0.0.1", "-p", str(self.stack.redis_port)]
            subprocess.run(
                ["redis-cli", *address, "SHUTDOWN", "SAVE"],
                capture_output=True,
                check=False,
                timeout=10,
            )
        else:
            os.kill(self.redis_pid(), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.redis_port_open():
            if time.monotonic() > deadline:
                raise RuntimeError("Redis did not stop")
            time.sleep(0.02)

    def start_redis(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / "redis" / "redis.pid").unlink()
        localstack.ensure_stack(self.root, self.stack.pg_port, self.stack.redis_port)

    async def reset(self) -> None:
        """Empty tables and Redis: each drill starts from nothing."""
        conn = await asyncpg.connect(self.database_url)
        try:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'migration'"
            )
            names = ", ".join(f'"{row["tablename"]}"' for row in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()
        redis = await _redis_client(self.redis_url)
        try:
            await redis.flushdb()
        finally:
            await redis.aclose()


async def _redis_client(url: str) -> Any:
    from redis.asyncio import Redis

    return Redis.from_url(url)


@contextlib.contextmanager
def migrated_private_stack(
    prefix: str, dbname: str
) -> Iterator[tuple[Path, localstack.LocalStack, str]]:
    """A private PostgreSQL and Redis on free ports in a temporary directory, with one
    migrated database; the shared servers are never touched. Removed afterwards
    unless BOOKING_KEEP_FAULT_DIRS is set."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(base, 0o755)  # noqa: S103 - the unprivileged PostgreSQL user must traverse it
    root = base / "stack"
    try:
        stack = localstack.ensure_stack(root, free_port(), free_port())
        url = localstack.ensure_database(stack, dbname)
        migrate = subprocess.run(
            [sys.executable, "-m", "booking.cli", "migrate"],
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
            text=True,
            check=False,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        yield root, stack, url
    finally:
        localstack.stop_stack(root)
        if not os.environ.get("BOOKING_KEEP_FAULT_DIRS"):
            shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def private_sms_stack() -> Iterator[SmsStack]:
    with migrated_private_stack("booking-sms-faults-", "sms_faults") as (root, stack, url):
        yield SmsStack(root, stack, url)


# --------------------------------------------------------------------------- processes


def _stop(process: subprocess.Popen[Any], grace: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class FakeTwilioProcess:
    """`python -m tests.fakes.fake_twilio --port 0`, driven over its control endpoints."""

    def __init__(self) -> None:
        command = [sys.executable, "-m", "tests.fakes.fake_twilio", "--port", "0"]
        command += ["--account-sid", DEFAULT_ACCOUNT_SID, "--auth-token", DEFAULT_AUTH_TOKEN]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            _stop(self.process)
            raise RuntimeError(f"fake Twilio did not start: {self.url!r}")

    async def script(self, outcomes: list[Any], default: Any = None) -> None:
        payload: dict[str, Any] = {"outcomes": outcomes}
        if default is not None:
            payload["default"] = default
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(f"{self.url}/_fake/script", json=payload)
            response.raise_for_status()

    async def messages(self) -> list[dict[str, Any]]:
        return await self._get("/_fake/messages")

    async def requests(self) -> list[dict[str, Any]]:
        return await self._get("/_fake/requests")

    async def _get(self, path: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(self.url + path)
            response.raise_for_status()
            data: list[dict[str, Any]] = response.json()
            return data

    def close(self) -> None:
        # SIGKILL, not SIGTERM: a stopping fake accepts its stalled requests at once,
        # and nothing it does after the count may matter.
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass
class Rig:
    stack: SmsStack
    fake: FakeTwilioProcess
    api: str
    api_process: subprocess.Popen[bytes]
    env: dict[str, str]
    logs: Path
    worker: subprocess.Popen[bytes] | None = None
    workers_started: int = 0
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    # worker -------------------------------------------------------------------

    def start_worker(self, *options: str) -> subprocess.Popen[bytes]:
        """A drill worker process (see drill_worker.py); the previous one must be gone."""
        assert self.worker is None or self.worker.poll() is not None, "a worker is running"
        self.workers_started += 1
        log_path = self.logs / f"worker-{self.workers_started}.log"
        with log_path.open("w") as log:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "tests.faults.drill_worker", *options],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._children.append(self.worker)
        return self.worker

    def kill_worker(self) -> None:
        """SIGKILL: no shutdown hook runs, in-flight jobs die where they stand."""
        assert self.worker is not None, "no worker"
        assert self.worker.poll() is None, "the worker is not running"
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(timeout=10)

    def worker_log(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text()[-3000:]}"
            for path in sorted(self.logs.glob("worker-*.log"))
        )

    # database -----------------------------------------------------------------

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.stack.database_url)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows
        finally:
            await conn.close()

    async def message_counts(self) -> dict[str, int]:
        rows = await self.fetch("SELECT status, count(*) AS n FROM message GROUP BY status")
        return {row["status"]: row["n"] for row in rows}

    # bookings -----------------------------------------------------------------

    async def tenant(self) -> Tenant:
        return await seed_tenant(self.stack.database_url, self.env)


@dataclass(frozen=True)
class Tenant:
    business_id: UUID
    service_id: UUID
    key: str

    def booking(self, index: int) -> dict[str, Any]:
        """The ``index``-th booking: its own slot and its own customer phone."""
        day = days_ahead(2 + index // SLOTS_PER_DAY)
        starts_at = rome(day, 1) + timedelta(minutes=30 * (index % SLOTS_PER_DAY))
        return {
            "service_id": str(self.service_id),
            "starts_at": starts_at.isoformat(),
            "customer": {"name": f"Drill {index}", "phone": phone(index)},
        }

    async def book(self, http: httpx.AsyncClient, index: int) -> httpx.Response:
        return await http.post(
            f"/v1/businesses/{self.business_id}/bookings",
            json=self.booking(index),
            headers={"Authorization": f"Bearer {self.key}"},
        )


def phone(index: int) -> str:
    return f"{PHONE_PREFIX}{index:07d}"


async def seed_tenant(database_url: str, env: dict[str, str]) -> Tenant:
    """One business, one member of staff working 00:00-23:30 daily, one 30-minute
    service, and an admin key: the tenant every drill books against."""
    conn = await asyncpg.connect(database_url)
    try:
        business_id = await conn.fetchval(
            "INSERT INTO business (slug, name, time_zone, locale, min_notice_minutes) "
            "VALUES ('sms-drill', 'Drill', 'Europe/Rome', 'en', 0) RETURNING id"
        )
        staff_id = await conn.fetchval(
            "INSERT INTO staff (business_id, name) VALUES ($1, 'Rita') RETURNING id", business_id
        )
        await conn.execute(
            "INSERT INTO working_hours (business_id, staff_id, weekday, opens_at, closes_at) "
            "SELECT $1, $2, d, '00:00', '23:30' FROM generate_series(0, 6) d",
            business_id,
            staff_id,
        )
        service_id = await conn.fetchval(
            "INSERT INTO service (business_id, name, duration_minutes) "
            "VALUES ($1, 'Cut', 30) RETURNING id",
            business_id,
        )
        await conn.execute(
            "INSERT INTO service_staff (business_id, service_id, staff_id) VALUES ($1, $2, $3)",
            business_id,
            service_id,
            staff_id,
        )
    finally:
        await conn.close()
    issued = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "booking.cli", "key", "create", "--kind", "admin"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return Tenant(business_id, service_id, json.loads(issued.stdout.splitlines()[-1])["key"])


def _start_api(
    env: dict[str, str], log_path: Path, quiet: bool = True
) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "booking.cli", "api", "--port", str(port)]
            + (["--quiet"] if quiet else []),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return base, process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError("private API did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.1)


@contextlib.asynccontextmanager
async def sms_rig(stack: SmsStack, *, quiet: bool = True, **env_vars: str) -> AsyncIterator[Rig]:
    """Empty database, fake Twilio, API; the drill starts its own worker(s).
    ``quiet=False``: the API writes its access log; ``env_vars`` override the environment."""
    await stack.reset()
    logs = stack.root.parent
    fake = FakeTwilioProcess()
    env = {
        **os.environ,
        "DATABASE_URL": stack.database_url,
        "REDIS_URL": stack.redis_url,
        "BOOKING_SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "BOOKING_TWILIO_BASE_URL": fake.url,
        "BOOKING_PUBLIC_BASE_URL": "https://booking.example.com",
        "BOOKING_LOG_LEVEL": "WARNING",
        **env_vars,
    }
    rig: Rig | None = None
    try:
        api, api_process = await asyncio.to_thread(_start_api, env, logs / "api.log", quiet)
        rig = Rig(stack, fake, api, api_process, env, logs)
        yield rig
    finally:
        if rig is not None:
            for child in rig._children:
                _stop(child)
            _stop(rig.api_process)
        fake.close()


def received_at(request: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(request["received_at"])
