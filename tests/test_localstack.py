"""booking.localstack: URL building, paths, and (with the local stack up) idempotency."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from booking import localstack
from booking.localstack import (
    LocalStack,
    base,
    ensure_database,
    ensure_stack,
    postgres,
    project_root,
)


def test_urls_quote_database_name() -> None:
    stack = LocalStack(root=Path("/x"), pg_port=54329, redis_port=63799)
    assert stack.database_url("booking") == "postgresql://postgres@127.0.0.1:54329/booking"
    assert stack.database_url("a b/c") == "postgresql://postgres@127.0.0.1:54329/a%20b%2Fc"
    assert stack.redis_url() == "redis://127.0.0.1:63799/0"
    assert stack.redis_url(1) == "redis://127.0.0.1:63799/1"


def test_project_root_holds_pyproject() -> None:
    root = project_root()
    assert (root / "pyproject.toml").is_file()
    assert (root / "src" / "booking" / "localstack" / "__init__.py").is_file()


def test_fallback_dir_is_stable_and_per_project() -> None:
    one = base.fallback_dir(Path("/root/a/.local"))
    assert one == base.fallback_dir(Path("/root/a/.local"))
    assert one != base.fallback_dir(Path("/root/b/.local"))
    assert one.parent == localstack.FALLBACK_BASE
    assert one.name.startswith("booking-")


def test_ensure_database_rejects_bad_names() -> None:
    stack = LocalStack(root=Path("/nonexistent"), pg_port=1, redis_port=2)
    with pytest.raises(localstack.LocalStackError):
        ensure_database(stack, "")
    with pytest.raises(localstack.LocalStackError):
        ensure_database(stack, "x" * 64)


def _local_test_ports() -> tuple[int, int] | None:
    db_url = os.environ.get("BOOKING_TEST_DATABASE_URL", "")
    redis_url = os.environ.get("BOOKING_TEST_REDIS_URL", "")
    db, redis = urlsplit(db_url), urlsplit(redis_url)
    if db.hostname != "127.0.0.1" or redis.hostname != "127.0.0.1":
        return None
    if db.port is None or redis.port is None:
        return None
    return db.port, redis.port


@pytest.mark.skipif(_local_test_ports() is None, reason="local stack URLs not set")
def test_ensure_stack_reuses_running_servers() -> None:
    ports = _local_test_ports()
    assert ports is not None
    pg_port, redis_port = ports
    first = ensure_stack(pg_port=pg_port, redis_port=redis_port)
    second = ensure_stack(pg_port=pg_port, redis_port=redis_port)
    assert first == second
    for port in (pg_port, redis_port):
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass

    name = "booking_localstack_selftest"
    try:
        url = ensure_database(first, name, recreate=True)
        assert url == first.database_url(name)
        assert ensure_database(first, name) == url  # exists: no error
    finally:
        postgres._psql(first, f'DROP DATABASE IF EXISTS "{name}"', what="drop selftest db")
