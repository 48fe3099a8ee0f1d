"""Every ``booking`` command starts on its own, from documented variables alone.

The commands run as subprocesses with a minimal environment (see tests/processes.py)
against their own database and Redis db, so the session's database is untouched.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from booking.settings import Settings
from tests.processes import (
    drop_database,
    flush_redis,
    free_port,
    fresh_database,
    minimal_env,
    redis_db_url,
    run,
    server_url,
    started,
    wait_http_ok,
)

SECRET = "processes-test-secret"
PROC_DB = "booking_processes"
PROC_REDIS_DB = 5
WORKER_PHONE = "+393339990001"


@pytest.fixture(scope="module")
def server(database_url: str) -> str:
    return server_url(database_url)


@pytest.fixture(scope="module")
def proc_env(server: str) -> Iterator[dict[str, str]]:
    """A fresh, migrated database and an empty Redis db; the minimal env that reaches them."""
    import os

    url = fresh_database(server, PROC_DB)
    redis_url = redis_db_url(os.environ["REDIS_URL"], PROC_REDIS_DB)
    flush_redis(redis_url)
    env = minimal_env(DATABASE_URL=url, REDIS_URL=redis_url, BOOKING_SECRET_KEY=SECRET)
    yield env
    flush_redis(redis_url)
    drop_database(server, PROC_DB)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Commands run from here: nothing may depend on the checkout as working directory."""
    return tmp_path_factory.mktemp("processes")


@pytest.fixture(scope="module")
def migrated(proc_env: dict[str, str], scratch: Path) -> dict[str, str]:
    result = run(["migrate"], proc_env, scratch)
    assert result.returncode == 0, result.stdout + result.stderr
    return proc_env


@pytest.fixture(scope="module")
def api(migrated: dict[str, str], scratch: Path) -> Iterator[str]:
    port = free_port()
    with started(
        ["api", "--port", str(port), "--quiet"], migrated, scratch, scratch / "api.log"
    ) as process:
        base = f"http://127.0.0.1:{port}"
        wait_http_ok(f"{base}/health", process)
        yield base


@pytest.fixture(scope="module")
def demo_business(migrated: dict[str, str], scratch: Path) -> str:
    result = run(["seed"], migrated, scratch)
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"demo business: ([0-9a-f-]{36})", result.stdout)
    assert match, result.stdout
    return match.group(1)


def create_key(env: dict[str, str], scratch: Path, *args: str) -> dict[str, Any]:
    result = run(["key", "create", *args], env, scratch)
    assert result.returncode == 0, result.stdout + result.stderr
    issued: dict[str, Any] = json.loads(result.stdout)
    return issued


def _fetchval(env: dict[str, str], sql: str, *args: Any) -> Any:
    import asyncio
    from uuid import UUID

    import asyncpg

    async def fetch() -> Any:
        conn = await asyncpg.connect(env["DATABASE_URL"])
        try:
            params = [UUID(a) if isinstance(a, str) else a for a in args]
            return await conn.fetchval(sql, *params)
        finally:
            await conn.close()

    return asyncio.run(fetch())


def _migration_count(env: dict[str, str]) -> int:
    count: int = _fetchval(env, "SELECT count(*) FROM migration")
    return count


# --------------------------------------------------------------------------- migrate


def test_migrate_backwards_then_forwards(migrated: dict[str, str], scratch: Path) -> None:
    applied = _migration_count(migrated)
    assert applied > 1
    back = run(["migrate", "--backwards"], migrated, scratch)
    assert back.returncode == 0, back.stdout + back.stderr
    assert _migration_count(migrated) == applied - 1
    forward = run(["migrate"], migrated, scratch)
    assert forward.returncode == 0, forward.stdout + forward.stderr
    assert _migration_count(migrated) == applied


class _LateProxy:
    """A TCP forwarder to PostgreSQL that starts listening only when told to."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self._listener: socket.socket | None = None

    def open(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()


def test_migrate_waits_for_the_database(server: str, scratch: Path) -> None:
    from urllib.parse import urlsplit

    url = fresh_database(server, "booking_processes_wait")
    parts = urlsplit(url)
    assert parts.port is not None
    proxy = _LateProxy(parts.port)
    late_url = url.replace(f":{parts.port}/", f":{proxy.port}/")
    env = minimal_env(DATABASE_URL=late_url, BOOKING_DB_WAIT_SECONDS="120")
    try:
        with started(["migrate"], env, scratch, scratch / "migrate-wait.log") as migrate:
            migrate.wait_for(r"waiting up to 120 s for the database at 127\.0\.0\.1:")
            proxy.open()  # the database "comes up" only now
            assert migrate.process.wait(timeout=120) == 0, migrate.output()
            assert "the database is up" in migrate.output()
        assert _migration_count({"DATABASE_URL": url}) > 1
    finally:
        proxy.close()
        drop_database(server, "booking_processes_wait")


def test_migrate_gives_up_with_a_clear_message(scratch: Path) -> None:
    port = free_port()  # nothing listens here
    env = minimal_env(
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/booking",
        BOOKING_DB_WAIT_SECONDS="1",
    )
    result = run(["migrate"], env, scratch)
    assert result.returncode == 1
    assert (
        f"the database at 127.0.0.1:{port}/booking did not accept connections within 1 s"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_local_stack_port_is_used_without_database_url(scratch: Path) -> None:
    port = free_port()  # nothing listens: the message names the URL the command chose
    env = minimal_env(BOOKING_LOCAL_PG_PORT=str(port), BOOKING_DB_WAIT_SECONDS="0")
    result = run(["migrate"], env, scratch)
    assert result.returncode == 1
    assert f"the database at 127.0.0.1:{port}/booking did not accept" in result.stderr


def test_settings_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "BOOKING_LOCAL_PG_PORT", "BOOKING_LOCAL_REDIS_PORT"):
        monkeypatch.delenv(name, raising=False)
    defaults = Settings.from_env()
    assert defaults.database_url == "postgresql://postgres@127.0.0.1:54329/booking"
    assert defaults.redis_url == "redis://127.0.0.1:63799/0"

    monkeypatch.setenv("BOOKING_LOCAL_PG_PORT", "55999")
    monkeypatch.setenv("BOOKING_LOCAL_REDIS_PORT", "63999")
    local = Settings.from_env()
    assert local.database_url == "postgresql://postgres@127.0.0.1:55999/booking"
    assert local.redis_url == "redis://127.0.0.1:63999/0"

    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.example:5432/prod")
    monkeypatch.setenv("REDIS_URL", "redis://cache.example:6379/2")
    explicit = Settings.from_env()
    assert explicit.database_url == "postgresql://app@db.example:5432/prod"
    assert explicit.redis_url == "redis://cache.example:6379/2"


# --------------------------------------------------------------------------- api, keys, seed


def test_api_answers_ready(api: str) -> None:
    response = httpx.get(f"{api}/ready", timeout=10)
    assert response.status_code == 200, response.text


def test_key_create_prints_a_key_that_authenticates(
    api: str, migrated: dict[str, str], scratch: Path
) -> None:
    issued = create_key(migrated, scratch, "--kind", "admin", "--name", "operator")
    assert issued["key"].startswith("bk_")
    assert httpx.get(f"{api}/v1/api-keys", timeout=10).status_code == 401
    response = httpx.get(
        f"{api}/v1/api-keys", headers={"Authorization": f"Bearer {issued['key']}"}, timeout=10
    )
    assert response.status_code == 200, response.text


def test_key_revoke_stops_the_key(api: str, migrated: dict[str, str], scratch: Path) -> None:
    issued = create_key(migrated, scratch, "--kind", "admin", "--name", "leaver")
    result = run(["key", "revoke", issued["prefix"]], migrated, scratch)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "revoked"
    response = httpx.get(
        f"{api}/v1/api-keys", headers={"Authorization": f"Bearer {issued['key']}"}, timeout=10
    )
    assert response.status_code == 401
    again = run(["key", "revoke", issued["prefix"]], migrated, scratch)
    assert again.returncode == 1
    assert again.stdout.strip() == "no such active key"


def test_seed_loads_the_demo(
    api: str, demo_business: str, migrated: dict[str, str], scratch: Path
) -> None:
    admin = create_key(migrated, scratch, "--kind", "admin")
    headers = {"Authorization": f"Bearer {admin['key']}"}
    business = httpx.get(f"{api}/v1/businesses/{demo_business}", headers=headers, timeout=10)
    assert business.status_code == 200, business.text
    assert business.json()["name"] == "Salone Bellavista"
    bookings = _fetchval(
        migrated, "SELECT count(*) FROM booking WHERE business_id = $1", demo_business
    )
    assert bookings > 0


def test_openapi_prints_the_document(proc_env: dict[str, str], scratch: Path) -> None:
    result = run(["openapi"], proc_env, scratch)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["openapi"].startswith("3.")
    assert "/v1/businesses/{business_id}/bookings" in document["paths"]


def _endpoints(env: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    import asyncio

    import asyncpg

    async def fetch() -> dict[str, tuple[str, str | None]]:
        conn = await asyncpg.connect(env["DATABASE_URL"])
        try:
            rows = await conn.fetch(
                "SELECT url, secret_sealed, previous_secret_sealed FROM webhook_endpoint"
            )
        finally:
            await conn.close()
        return {r["url"]: (r["secret_sealed"], r["previous_secret_sealed"]) for r in rows}

    return asyncio.run(fetch())


def _add_endpoint(env: dict[str, str], url: str, sealed: str, previous: str | None) -> None:
    import asyncio

    import asyncpg

    async def insert() -> None:
        conn = await asyncpg.connect(env["DATABASE_URL"])
        try:
            partner = await conn.fetchval(
                "INSERT INTO partner (name) VALUES ('reseal') RETURNING id"
            )
            await conn.execute(
                "INSERT INTO webhook_endpoint (partner_id, url, event_types, secret_sealed, "
                "previous_secret_sealed, previous_secret_expires_at, created_by) "
                "VALUES ($1, $2, '{booking.created}', $3, $4, now() + interval '1 day', 'test')",
                partner,
                url,
                sealed,
                previous,
            )
        finally:
            await conn.close()

    asyncio.run(insert())


def _add_calendar(env: dict[str, str], sealed: str) -> None:
    import asyncio

    import asyncpg

    async def insert() -> None:
        conn = await asyncpg.connect(env["DATABASE_URL"])
        try:
            await conn.execute(
                "WITH b AS (INSERT INTO business (slug, name, time_zone) VALUES "
                "('reseal', 'Reseal', 'Europe/Rome') RETURNING id), s AS (INSERT INTO staff "
                "(business_id, name) SELECT id, 'Ada' FROM b RETURNING business_id, id) "
                "INSERT INTO calendar_connection (business_id, staff_id, kind, url, username, "
                "password_sealed, created_by) SELECT business_id, id, 'caldav', "
                "'https://dav.example/c/', 'ada', $1, 'test' FROM s",
                sealed,
            )
        finally:
            await conn.close()

    asyncio.run(insert())


def _password(env: dict[str, str]) -> str:
    import asyncio

    import asyncpg

    async def fetch() -> str:
        conn = await asyncpg.connect(env["DATABASE_URL"])
        try:
            value: str = await conn.fetchval("SELECT password_sealed FROM calendar_connection")
        finally:
            await conn.close()
        return value

    return asyncio.run(fetch())


def test_reseal_secrets_moves_webhook_secrets_to_the_newest_key(
    migrated: dict[str, str], scratch: Path
) -> None:
    """After a new key is put first in BOOKING_ENCRYPTION_KEYS, ``booking reseal-secrets``
    re-encrypts every stored secret (current and previous) under it and says how many."""
    from cryptography.fernet import Fernet

    from booking.webhooks import secrets

    old, new, lost = (Fernet.generate_key().decode() for _ in range(3))
    before = Settings(encryption_keys=old)
    _add_endpoint(
        migrated,
        "https://a.example/hook",
        secrets.seal("whsec_a", before),
        secrets.seal("whsec_a_old", before),
    )
    _add_endpoint(migrated, "https://b.example/hook", secrets.seal("whsec_b", before), None)
    _add_calendar(migrated, secrets.seal("caldav-pw", before))
    rotating = {**migrated, "BOOKING_ENCRYPTION_KEYS": f"{new},{old}"}

    result = run(["reseal-secrets"], rotating, scratch)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "resealed 2 webhook endpoints (0 already current)",
        "resealed 1 calendar passwords (0 already current)",
    ]
    only_new = Settings(encryption_keys=new)
    stored = _endpoints(migrated)
    a_sealed, a_previous = stored["https://a.example/hook"]
    assert secrets.unseal(a_sealed, only_new) == "whsec_a"
    assert a_previous is not None
    assert secrets.unseal(a_previous, only_new) == "whsec_a_old"
    assert secrets.unseal(stored["https://b.example/hook"][0], only_new) == "whsec_b"
    assert stored["https://b.example/hook"][1] is None

    again = run(["reseal-secrets"], rotating, scratch)  # nothing left to move
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        "resealed 0 webhook endpoints (2 already current)",
        "resealed 0 calendar passwords (1 already current)",
    ]
    assert _endpoints(migrated) == stored
    assert secrets.unseal(_password(migrated), only_new) == "caldav-pw"

    # A secret no configured key opens: counted, left alone, exit status 1.
    unknown = secrets.seal("whsec_c", Settings(encryption_keys=lost))
    _add_endpoint(migrated, "https://c.example/hook", unknown, None)
    failed = run(["reseal-secrets"], rotating, scratch)
    assert failed.returncode == 1
    assert "1 webhook endpoints have secrets no key" in failed.stderr
    assert _endpoints(migrated)["https://c.example/hook"] == (unknown, None)


# --------------------------------------------------------------------------- worker


def test_worker_sends_a_booking_sms(
    api: str, demo_business: str, migrated: dict[str, str], scratch: Path
) -> None:
    """A booking made through the API is texted by a standalone worker (console sender)."""
    key = create_key(
        migrated, scratch, "--kind", "staff", "--role", "front_desk", "--business", demo_business
    )
    headers = {"Authorization": f"Bearer {key['key']}"}
    service_id = _fetchval(
        migrated, "SELECT id::text FROM service WHERE business_id = $1 ORDER BY name LIMIT 1",
        demo_business,
    )
    now = datetime.now(UTC)
    slots = httpx.get(
        f"{api}/v1/businesses/{demo_business}/availability",
        headers=headers,
        params={
            "service_id": service_id,
            "from": (now + timedelta(days=1)).isoformat(),
            "to": (now + timedelta(days=8)).isoformat(),
        },
    )
    assert slots.status_code == 200, slots.text
    starts_at = slots.json()["slots"][0]["starts_at"]
    created = httpx.post(
        f"{api}/v1/businesses/{demo_business}/bookings",
        headers=headers,
        json={
            "service_id": service_id,
            "starts_at": starts_at,
            "customer": {"name": "Nora Standalone", "phone": WORKER_PHONE, "locale": "en"},
        },
    )
    assert created.status_code == 201, created.text
    reference = created.json()["reference_code"]

    with started(["worker"], migrated, scratch, scratch / "worker.log") as worker:
        match = worker.wait_for(
            rf"To:   {re.escape(WORKER_PHONE)}\n  Body: [^\n]*{re.escape(reference)}[^\n]*"
        )
    assert "/b/" in match.group(0)
