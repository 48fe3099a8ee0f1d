"""``booking up``: customer links follow the port it serves on, and it names the SMS sender.

Runs ``booking up`` as an operator would (minimal environment, see tests/processes.py)
on its own database and Redis db, with Twilio configured against the fake Twilio.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from booking.cli import describe_sms, links_base, public_base_url
from booking.notifications.sms import SmsConfigurationError
from booking.settings import Settings
from tests.fakes.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.processes import (
    PATIENCE,
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

ROOT = Path(__file__).resolve().parents[1]
UP_DB = "booking_processes_up"
UP_REDIS_DB = 6
FROM_NUMBER = "+15005550006"


def test_links_follow_host_and_port_unless_configured() -> None:
    assert public_base_url("127.0.0.1", 8601) == "http://127.0.0.1:8601"
    assert public_base_url("0.0.0.0", 8601) == "http://127.0.0.1:8601"
    assert public_base_url("::", 8601) == "http://[::1]:8601"
    assert public_base_url("localhost", 9000) == "http://localhost:9000"
    assert links_base(None, "127.0.0.1", 8601)[0] == "http://127.0.0.1:8601"
    assert links_base("", "127.0.0.1", 8601)[0] == "http://127.0.0.1:8601"
    assert links_base("https://book.example/", "127.0.0.1", 8601) == (
        "https://book.example",
        "BOOKING_PUBLIC_BASE_URL",
    )


def test_sms_line_tells_which_sender_is_active() -> None:
    twilio = {"twilio_account_sid": "AC1", "twilio_auth_token": "t", "twilio_from_number": "+1555"}
    assert describe_sms(Settings()) == "printed on this console (no Twilio configured)"
    assert describe_sms(Settings(**twilio)) == "sent through Twilio from +1555"
    forced = Settings(**twilio, sms_backend="console")
    assert describe_sms(forced).startswith("printed on this console (BOOKING_SMS_BACKEND=console")
    assert describe_sms(forced, backend_chosen=False).startswith(
        "printed on this console (Twilio is configured; set BOOKING_SMS_BACKEND=twilio"
    )
    with pytest.raises(SmsConfigurationError):
        describe_sms(Settings(sms_backend="twilio"))


@pytest.mark.parametrize("backend", ["twilio", None], ids=["twilio-asked", "up-default"])
def test_up_serves_on_its_port_and_texts_links_to_it(
    database_url: str, tmp_path: Path, backend: str | None
) -> None:
    """Twilio is configured (the fake); up uses it only when BOOKING_SMS_BACKEND asks."""
    server = server_url(database_url)
    url = fresh_database(server, UP_DB)
    redis_url = redis_db_url(os.environ["REDIS_URL"], UP_REDIS_DB)
    flush_redis(redis_url)
    fake_cmd = ["-m", "tests.fakes.fake_twilio", "--port", "0"]
    fake_env = minimal_env(PYTHONPATH=str(ROOT))
    fake_log = tmp_path / "fake.log"
    try:
        with started(fake_cmd, fake_env, ROOT, fake_log, program=sys.executable) as fake:
            fake_base = fake.wait_for(r"http://127\.0\.0\.1:\d+").group(0)
            port = free_port()
            env = minimal_env(
                DATABASE_URL=url,
                REDIS_URL=redis_url,
                BOOKING_SECRET_KEY="up-test-secret",
                TWILIO_ACCOUNT_SID=DEFAULT_ACCOUNT_SID,
                TWILIO_AUTH_TOKEN=DEFAULT_AUTH_TOKEN,
                TWILIO_FROM_NUMBER=FROM_NUMBER,
                BOOKING_TWILIO_BASE_URL=fake_base,
            )
            if backend:
                env["BOOKING_SMS_BACKEND"] = backend
            base = f"http://127.0.0.1:{port}"
            with started(["up", "--port", str(port)], env, tmp_path, tmp_path / "up.log") as up:
                up.wait_for(rf"SMS links      {re.escape(base)}/b/")
                # The banner comes once the API serves: the first request is answered.
                assert httpx.get(f"{base}/health", timeout=10).status_code == 200
                wait_http_ok(f"{base}/ready", up)
                if backend == "twilio":
                    twilio_line = f"SMS            sent through Twilio from {FROM_NUMBER} "
                    up.wait_for(re.escape(twilio_line))
                    # The demo bookings' confirmations reach (fake) Twilio, linking here.
                    sent = _wait_for_sms(fake_base)
                    assert sent, up.output()
                    assert all(f"{base}/b/" in form["Body"] for form in sent), sent
                    assert all(form["From"] == FROM_NUMBER for form in sent)
                    assert all(form["StatusCallback"].startswith(base) for form in sent)
                    assert "----- SMS console-" not in up.output()
                else:
                    up.wait_for(
                        r"SMS            printed on this console \(Twilio is configured; "
                        r"set BOOKING_SMS_BACKEND=twilio"
                    )
                    up.wait_for(rf"----- SMS console-\w+ -----\n.*\n  Body: .*{re.escape(base)}/b/")
                    assert httpx.get(f"{fake_base}/_fake/requests", timeout=10).json() == []
                assert up.stop() == 0, up.output()
    finally:
        flush_redis(redis_url)
        drop_database(server, UP_DB)


def _wait_for_sms(fake_base: str) -> list[dict[str, str]]:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        requests = httpx.get(f"{fake_base}/_fake/requests", timeout=10).json()
        forms = [request["form"] for request in requests if request["authorized"]]
        if forms:
            return forms
        time.sleep(0.2)
    return []


def test_up_refuses_a_port_that_something_already_serves(tmp_path: Path) -> None:
    """Before anything starts: no banner naming someone else's server, exit status 2."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run(
            ["up", "--port", str(port)], minimal_env(BOOKING_SECRET_KEY="up-test-secret"), tmp_path
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"booking up: error: 127.0.0.1:{port} is already in use" in result.stderr
    assert "manager key" not in result.stdout
