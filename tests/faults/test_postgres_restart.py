"""Fault drill: PostgreSQL restarted under load.

A private PostgreSQL and Redis (booking.localstack on free ports, in a temporary
directory) and a private API process pointed at them; the shared servers are
never touched. Concurrent clients keep reading and booking while PostgreSQL is
shut down (fast shutdown, as `pg_ctl stop -m fast`) and started again. While it
is down every answer is a 503 problem document (never a 500, never a trace);
once it is back the same API process answers 2xx again, without a restart.
Set BOOKING_KEEP_FAULT_DIRS=1 to keep the private stack's directory (and the
API's log, api.log) for a post-mortem.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from booking import localstack
from tests.faults.sms_drill import Tenant, free_port, migrated_private_stack, seed_tenant
from tests.support import ROME, days_ahead, rome

SERVER_ERROR_MARKERS = ("Traceback", 'File "', "asyncpg", "Exception")


@dataclass
class PrivateStack:
    root: Path
    stack: localstack.LocalStack
    database_url: str

    def postmaster_pid(self) -> int:
        pidfile = self.root / "pg" / "data" / "postmaster.pid"
        return int(pidfile.read_text().split()[0])

    def port_open(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", self.stack.pg_port)) == 0

    def stop_postgres(self) -> None:
        """Fast shutdown (SIGINT to the postmaster), then wait for the port to close."""
        os.kill(self.postmaster_pid(), signal.SIGINT)
        deadline = time.monotonic() + 30
        while self.port_open():
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not stop")
            time.sleep(0.05)

    def start_postgres(self) -> None:
        localstack.ensure_stack(self.root, self.stack.pg_port, self.stack.redis_port)


@pytest.fixture(scope="module")
def private_stack() -> Iterator[PrivateStack]:
    with migrated_private_stack("booking-faults-", "faults") as (root, stack, url):
        yield PrivateStack(root, stack, url)


@pytest.fixture(scope="module")
def private_api(private_stack: PrivateStack) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": private_stack.database_url,
        "REDIS_URL": private_stack.stack.redis_url(0),
        # The drill is about PostgreSQL; the per-key limit would turn its load into 429s.
        "BOOKING_RATE_LIMIT_PER_MINUTE": "0",
    }
    log_path = private_stack.root.parent / "api.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "booking.cli", "api", "--port", str(port), "--quiet"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("private API did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.1)
    yield base, process
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@dataclass(frozen=True)
class Answer:
    operation: str
    began: float
    ended: float
    status: int  # 0: no HTTP answer at all
    content_type: str
    body: str


class Load:
    """Clients reading the business, searching a day and booking, back to back."""

    def __init__(self, base: str, tenant: Tenant, clients: int = 4) -> None:
        self.base = base
        self.tenant = tenant
        self.clients = clients
        self.answers: list[Answer] = []
        self.next_slot = 0
        self._stop = asyncio.Event()

    def _booking_body(self) -> dict[str, Any]:
        index = self.next_slot
        self.next_slot += 1
        starts_at = rome(days_ahead(2 + index // 40), 1) + timedelta(minutes=30 * (index % 40))
        return {
            "service_id": str(self.tenant.service_id),
            "starts_at": starts_at.isoformat(),
            "customer": {"name": "Drill", "phone": f"+39336{index:07d}"},
        }

    async def _client(self, number: int) -> None:
        headers = {"Authorization": f"Bearer {self.tenant.key}"}
        business = f"/v1/businesses/{self.tenant.business_id}"
        day = datetime.combine(days_ahead(1), datetime.min.time(), tzinfo=ROME)
        search = {
            "service_id": str(self.tenant.service_id),
            "from": day.isoformat(),
            "to": (day + timedelta(days=1)).isoformat(),
        }
        async with httpx.AsyncClient(base_url=self.base, headers=headers, timeout=10) as http:
            turn = number
            while not self._stop.is_set():
                turn += 1
                operation = ("read", "search", "book")[turn % 3]
                began = time.monotonic()
                try:
                    if operation == "read":
                        response = await http.get(business)
                    elif operation == "search":
                        response = await http.get(f"{business}/availability", params=search)
                    else:
                        response = await http.post(
                            f"{business}/bookings", json=self._booking_body()
                        )
                except httpx.HTTPError as exc:
                    self.answers.append(
                        Answer(operation, began, time.monotonic(), 0, "", repr(exc))
                    )
                    await asyncio.sleep(0.01)
                    continue
                self.answers.append(
                    Answer(
                        operation,
                        began,
                        time.monotonic(),
                        response.status_code,
                        response.headers.get("content-type", ""),
                        response.text,
                    )
                )
                await asyncio.sleep(0.005)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(self._client(n)) for n in range(self.clients)]
        try:
            yield
        finally:
            self._stop.set()
            await asyncio.gather(*tasks)

    def between(self, start: float, end: float) -> list[Answer]:
        return [a for a in self.answers if a.began >= start and a.ended <= end]


async def _wait_for_success(load: Load, since: float, within: float) -> float:
    """When every operation has answered 2xx for a request begun after ``since``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        recovered = {
            a.operation for a in load.answers if a.began >= since and 200 <= a.status < 300
        }
        if recovered == {"read", "search", "book"}:
            return time.monotonic()
        await asyncio.sleep(0.05)
    raise AssertionError(
        "the API did not recover: "
        + repr(
            [(a.operation, a.status, a.body[:200]) for a in load.answers if a.began >= since][-6:]
        )
    )


async def test_postgres_restart_under_load_gives_503_problems_then_recovers_without_restart(
    private_stack: PrivateStack, private_api: tuple[str, subprocess.Popen[bytes]]
) -> None:
    base, api_process = private_api
    tenant = await seed_tenant(
        private_stack.database_url, {**os.environ, "DATABASE_URL": private_stack.database_url}
    )
    load = Load(base, tenant)
    async with load.running():
        started = time.monotonic()
        await asyncio.sleep(1.0)
        stopping_at = time.monotonic()
        await asyncio.to_thread(private_stack.stop_postgres)
        down_at = time.monotonic()
        await asyncio.sleep(2.0)
        restart_at = time.monotonic()
        await asyncio.to_thread(private_stack.start_postgres)
        up_at = time.monotonic()
        recovered_at = await _wait_for_success(load, up_at, within=20)
        await asyncio.sleep(1.5)
        finished = time.monotonic()

    # Never a 5xx other than 503, never a connection dropped, never a trace.
    assert {a.status for a in load.answers} <= {200, 201, 503}, sorted(
        {(a.status, a.body[:300]) for a in load.answers if a.status not in (200, 201, 503)}
    )
    for answer in load.answers:
        if answer.status == 503:
            assert answer.content_type.startswith("application/problem+json"), answer
            problem = json.loads(answer.body)
            assert problem["type"] == "/problems/unavailable", problem
            assert problem["status"] == 503
            assert not any(marker in answer.body for marker in SERVER_ERROR_MARKERS), answer

    before = load.between(started, stopping_at)
    assert before, "no traffic before the restart"
    assert all(200 <= a.status < 300 for a in before), [
        (a.status, a.body[:300]) for a in before if not 200 <= a.status < 300
    ]

    down = load.between(down_at, restart_at)
    assert len(down) >= 10, f"only {len(down)} requests while PostgreSQL was down"
    assert {a.status for a in down} == {503}
    assert {a.operation for a in down} == {"read", "search", "book"}

    after = load.between(recovered_at + 0.5, finished)
    assert after, "no traffic after recovery"
    assert all(200 <= a.status < 300 for a in after), [(a.status, a.body[:200]) for a in after]
    assert recovered_at - up_at < 20
    assert api_process.poll() is None, "the API process was restarted or died"

    # Every 201 is a distinct row that survived the restart.
    booked = [UUID(json.loads(a.body)["id"]) for a in load.answers if a.status == 201]
    conn = await asyncpg.connect(private_stack.database_url)
    try:
        stored = await conn.fetchval(
            "SELECT count(*) FROM booking WHERE id = ANY($1::uuid[])", booked
        )
    finally:
        await conn.close()
    assert len(set(booked)) == len(booked) == stored


async def test_a_connection_broken_mid_protocol_is_unavailable_not_a_server_error(
    db_pool: None,
) -> None:
    """Regression: the drill first met asyncpg's InternalClientError ("cannot switch to
    state 15; another operation is in progress") as a 500 while PostgreSQL shut down."""
    from booking import db
    from booking.errors import Unavailable

    with pytest.raises(Unavailable):
        async with db.connection():
            raise asyncpg.exceptions.InternalClientError("cannot switch to state 15")
    with pytest.raises(Unavailable):
        async with db.transaction():
            raise asyncpg.exceptions.InternalClientError("cannot switch to state 12")
