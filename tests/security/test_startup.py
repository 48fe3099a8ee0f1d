"""Finding 3 of issue 18: the public default secret key never signs production links.

The API and worker start as an operator starts them (subprocess, minimal environment).
Outside local development (BOOKING_ENV unset = production) they refuse the default key
and say how to set one; BOOKING_ENV=development (what ``booking up`` sets) still starts.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from booking.access.tokens import TokenError, make_booking_token, read_booking_token
from booking.settings import DEFAULT_SECRET_KEY, InsecureConfiguration, Settings
from tests.processes import free_port, minimal_env, run, started, wait_http_ok


def _env(**extra: str) -> dict[str, str]:
    return minimal_env(
        DATABASE_URL=os.environ["DATABASE_URL"], REDIS_URL=os.environ["REDIS_URL"], **extra
    )


@pytest.mark.parametrize("command", [["api", "--port", "0"], ["worker", "--burst"]])
def test_refuses_to_start_in_production_with_the_default_secret(
    command: list[str], tmp_path: Path
) -> None:
    result = run(command, _env(), tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "BOOKING_SECRET_KEY is unset" in result.stderr
    assert "secrets.token_urlsafe" in result.stderr  # says how to make one
    assert "BOOKING_ENV=development" in result.stderr


def test_refuses_the_default_secret_even_when_spelled_out(tmp_path: Path) -> None:
    result = run(["worker", "--burst"], _env(BOOKING_SECRET_KEY=DEFAULT_SECRET_KEY), tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "BOOKING_SECRET_KEY" in result.stderr


def test_local_development_starts_with_the_default_secret(tmp_path: Path) -> None:
    port = free_port()
    with started(
        ["api", "--port", str(port), "--quiet"],
        _env(BOOKING_ENV="development"),
        tmp_path,
        tmp_path / "api.log",
    ) as process:
        wait_http_ok(f"http://127.0.0.1:{port}/health", process)


def test_production_starts_with_a_real_secret(tmp_path: Path) -> None:
    port = free_port()
    with started(
        ["api", "--port", str(port), "--quiet"],
        _env(BOOKING_SECRET_KEY="a-long-random-production-secret"),
        tmp_path,
        tmp_path / "api.log",
    ) as process:
        wait_http_ok(f"http://127.0.0.1:{port}/health", process)


def test_the_check_itself() -> None:
    with pytest.raises(InsecureConfiguration):
        Settings().check_deployable()  # production is the default
    with pytest.raises(InsecureConfiguration):
        Settings(secret_key="short").check_deployable()
    Settings(environment="development").check_deployable()
    Settings(environment="test").check_deployable()
    Settings(secret_key="x" * 32).check_deployable()


def test_links_signed_with_the_previous_key_open_during_a_rotation() -> None:
    old, new = "old-secret-key-0123456789", "new-secret-key-0123456789"
    booking_id = uuid4()
    expiry = datetime.now(UTC) + timedelta(days=1)
    link = make_booking_token(old, booking_id, expiry)
    rotating = Settings(secret_key=new, previous_secret_key=old)
    assert read_booking_token(rotating.link_secrets, link) == booking_id
    with pytest.raises(TokenError):
        read_booking_token(Settings(secret_key=new).link_secrets, link)  # after the rotation
