"""Log lines carry no secrets: tokens, API keys, full phone numbers, message bodies."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
import structlog

from booking.access.tokens import make_booking_token
from booking.calendars.feeds import make_token
from booking.telemetry import logs
from booking.telemetry.logs import configure_logging, redact_text, request_id_from_header
from booking.telemetry.requests import RequestTelemetry

TOKEN = make_booking_token("a-secret", uuid4())
API_KEY = "bk_live_" + "x7" * 16
PHONE = "+393471234567"
FEED_ID = uuid4()
FEED_SECRET = "Or-ol0YH8mIg0_hNohI-cJhwxBihMzyn"
FEED = make_token(FEED_ID, FEED_SECRET)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("INFO", "json", "test")
    stream = io.StringIO()
    [handler] = [h for h in root.handlers if h.get_name() == "booking"]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream
    root.handlers, root.level = saved
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_redact_text_removes_tokens_keys_and_phone_digits() -> None:
    text = redact_text(f"GET /b/{TOKEN} by {API_KEY} for {PHONE}")
    assert TOKEN not in text
    assert API_KEY not in text
    assert PHONE not in text
    assert "/b/bt.[redacted]" in text
    assert "+39***67" in text


def test_a_calendar_feed_url_keeps_its_feed_id_and_loses_its_secret() -> None:
    """Anyone with a feed URL reads that calendar: its secret is as good as a password."""
    text = redact_text(f"GET /feeds/{FEED}.ics and again https://x/feeds/{FEED}.ics")
    assert FEED_SECRET not in text
    feed_id = FEED.split(".")[1]
    assert text.count(f"/feeds/cf.{feed_id}.[redacted].ics") == 2


def test_stdlib_and_structlog_lines_are_json_and_redacted(captured: io.StringIO) -> None:
    logging.getLogger("booking.test").warning("sending %s to %s", f"https://x/b/{TOKEN}", PHONE)
    structlog.get_logger("booking.test").info(
        "sms", body=f"Your link https://x/b/{TOKEN}", to=PHONE, key=API_KEY, secret_key="s"
    )
    raw = captured.getvalue()
    for secret in (TOKEN, API_KEY, PHONE, "Your link"):
        assert secret not in raw
    first, second = lines(captured)
    assert first["level"] == "warning"
    assert first["logger"] == "booking.test"
    assert second["body"] == "[redacted]"
    assert second["to"] == "+39***67"
    assert second["process"] == "test"


def test_bound_request_id_reaches_every_line(captured: io.StringIO) -> None:
    with structlog.contextvars.bound_contextvars(request_id="req-42"):
        logging.getLogger("booking.test").info("inside")
    logging.getLogger("booking.test").info("outside")
    inside, outside = lines(captured)
    assert inside["request_id"] == "req-42"
    assert "request_id" not in outside


@pytest.mark.parametrize(
    ("given", "kept"),
    [("abc-123", True), ("a" * 64, True), ("a" * 65, False), ("bad id\n", False), ("", False)],
)
def test_caller_request_id_is_kept_only_when_sane(given: str, kept: bool) -> None:
    chosen = request_id_from_header(given)
    assert (chosen == given) is kept
    assert 1 <= len(chosen) <= 64


def _access_lines(level: str, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """What RequestTelemetry writes for one request whose path holds a booking token."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(logs, "_access", None)  # the direct logger is rebuilt below
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging(level, "json", "api")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def ignore(message: Any) -> None:
        return None

    scope = {
        "type": "http",
        "method": "GET",
        "path": f"/b/{TOKEN}",
        "headers": [(b"x-request-id", b"req-7")],
    }
    try:
        asyncio.run(RequestTelemetry(app, access_log=True, metrics=False)(scope, None, ignore))
    finally:
        root.handlers, root.level = saved
        structlog.reset_defaults()
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_the_access_line_is_json_redacted_and_carries_the_request_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (line,) = _access_lines("INFO", monkeypatch)
    assert TOKEN not in json.dumps(line)
    assert line["path"] == "/b/bt.[redacted]"
    assert (line["logger"], line["level"], line["event"]) == ("booking.access", "info", "request")
    assert (line["request_id"], line["status"], line["process"]) == ("req-7", 204, "api")
    assert str(line["timestamp"]).endswith("Z")


def test_the_access_line_follows_the_process_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _access_lines("WARNING", monkeypatch) == []


def test_values_json_cannot_hold_are_written_as_their_repr_and_still_redacted(
    captured: io.StringIO,
) -> None:
    class Opaque:
        def __repr__(self) -> str:
            return f"<Opaque for {PHONE}>"

    booking_id = uuid4()
    structlog.get_logger("booking.test").info(
        "odd values",
        booking_id=booking_id,
        thing=Opaque(),
        nested={"to": PHONE, "n": 3},
        text="caffè",
    )
    [line] = lines(captured)
    assert line["booking_id"] == str(booking_id)
    assert line["thing"] == "<Opaque for +39***67>"  # the repr, redacted
    assert line["nested"] == {"to": "+39***67", "n": 3}
    assert line["text"] == "caffè"
    assert PHONE not in captured.getvalue()


def test_caldav_s_dump_of_a_server_s_answer_is_a_debug_line(captured: io.StringIO) -> None:
    """caldav logs a calendar server's non-XML answer at CRITICAL with a traceback (through
    the root logger); the sync reports the failure on the connection, so unless the
    process logs at DEBUG the line is not written, and at DEBUG it says debug."""
    site = f"{os.sep}site-packages{os.sep}caldav{os.sep}davclient.py"

    def caldav_line(level: int, message: str) -> None:
        record = logging.LogRecord("root", level, site, 137, message, None, None)
        logging.getLogger().handle(record)

    caldav_line(logging.CRITICAL, "Expected some valid XML from the server, but got this: <html>")
    caldav_line(logging.WARNING, "Deviation from expectations found: Unexpected content type")
    logging.getLogger("booking.calendars").warning("calendar 1: The server refused")
    assert [(line["level"], line["event"]) for line in lines(captured)] == [
        ("warning", "calendar 1: The server refused")
    ]
    logging.getLogger().setLevel(logging.DEBUG)
    caldav_line(logging.CRITICAL, "Expected some valid XML from the server, but got this: <p>")
    (*_, last) = lines(captured)
    assert last["level"] == "debug"
    assert str(last["event"]).startswith("Expected some valid XML")
