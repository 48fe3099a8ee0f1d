"""SMS senders: the real twilio client against a local fake Twilio."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import aiohttp
import pytest
from twilio.base.exceptions import TwilioServiceException

from booking.notifications.sms import (
    TWILIO_OPTED_OUT,
    ConsoleSmsSender,
    SentSms,
    SmsConfigurationError,
    SmsSendError,
    TwilioSmsSender,
    _error_from_twilio,
    _parse_retry_after,
    build_sms_sender,
)
from booking.settings import Settings
from tests.fakes.fake_twilio import FakeTwilio, RateLimit, Stall

FROM = "+15005550006"
TO = "+15551230001"
CALLBACK = "https://booking.example.test/webhooks/twilio/status?booking=42"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as server:
        yield server


@pytest.fixture
async def sender(fake: FakeTwilio) -> AsyncIterator[TwilioSmsSender]:
    twilio = TwilioSmsSender(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        from_number=FROM,
        base_url=fake.base_url,
        timeout=5,
    )
    yield twilio
    await twilio.aclose()


async def send_error(sender: TwilioSmsSender) -> SmsSendError:
    with pytest.raises(SmsSendError) as caught:
        await sender.send(to=TO, body="Your booking is confirmed", status_callback=CALLBACK)
    return caught.value


# --------------------------------------------------------------------------- Twilio


async def test_accepted_message_reaches_fake_with_all_fields(
    fake: FakeTwilio, sender: TwilioSmsSender
) -> None:
    sent = await sender.send(
        to=TO, body="Tue 14:00 with Ana.\nReply C to cancel.", status_callback=CALLBACK
    )

    [request] = fake.requests
    assert request.authorized
    assert request.account_sid == fake.account_sid
    assert request.form["To"] == TO
    assert request.form["From"] == FROM
    assert request.form["Body"] == "Tue 14:00 with Ana.\nReply C to cancel."
    assert request.form["StatusCallback"] == CALLBACK
    [message] = fake.accepted
    assert sent == SentSms(provider_sid=message.sid, status="queued")
    assert sent.provider_sid.startswith("SM")
    assert len(sent.provider_sid) == 34


async def test_a_body_with_form_special_characters_arrives_as_written(
    fake: FakeTwilio, sender: TwilioSmsSender
) -> None:
    """The form is encoded by the sender (not by aiohttp): &, =, +, %, non-ASCII and a
    line break in the body, and a callback URL with a query, arrive unchanged."""
    body = "Caffè & cornetto = 5€ + 10% sconto?\nRispondi SÌ/NO #1"
    callback = CALLBACK + "?a=1&b=x+y"
    await sender.send(to=TO, body=body, status_callback=callback)

    [request] = fake.requests
    assert request.form["Body"] == body
    assert request.form["StatusCallback"] == callback
    assert request.form["To"] == TO
    assert fake.accepted[0].body == body


async def test_no_status_callback_field_when_none_given(
    fake: FakeTwilio, sender: TwilioSmsSender
) -> None:
    await sender.send(to=TO, body="hello")

    assert "StatusCallback" not in fake.requests[0].form
    assert fake.accepted[0].status_callback is None


async def test_rate_limit_is_retryable_with_retry_after(
    fake: FakeTwilio, sender: TwilioSmsSender
) -> None:
    fake.script(RateLimit(retry_after=7))

    error = await send_error(sender)

    assert error.retryable
    assert error.http_status == 429
    assert error.code == 20429
    assert error.retry_after == 7.0
    assert fake.accepted == []


async def test_next_send_after_script_is_accepted(
    fake: FakeTwilio, sender: TwilioSmsSender
) -> None:
    fake.script(503)

    first = await send_error(sender)
    second = await sender.send(to=TO, body="again")

    assert first.retryable
    assert first.http_status == 503
    assert second.provider_sid == fake.accepted[0].sid


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retryable(
    fake: FakeTwilio, sender: TwilioSmsSender, status: int
) -> None:
    fake.script(status)

    error = await send_error(sender)

    assert error.retryable
    assert error.http_status == status
    assert error.retry_after is None


async def test_opted_out_recipient_is_permanent(fake: FakeTwilio, sender: TwilioSmsSender) -> None:
    fake.script((400, 21610))

    error = await send_error(sender)

    assert not error.retryable
    assert error.code == TWILIO_OPTED_OUT == 21610
    assert error.opted_out
    assert error.http_status == 400
    assert "unsubscribed" in error.message


@pytest.mark.parametrize("code", [21211, 21614, 21408, 21612])
async def test_recipient_errors_are_permanent(
    fake: FakeTwilio, sender: TwilioSmsSender, code: int
) -> None:
    fake.script((400, code))

    error = await send_error(sender)

    assert not error.retryable
    assert error.code == code
    assert not error.opted_out


async def test_4xx_without_twilio_code_is_permanent_and_has_no_code(
    fake: FakeTwilio, sender: TwilioSmsSender
) -> None:
    fake.script(403)

    error = await send_error(sender)

    assert not error.retryable
    assert error.http_status == 403
    assert error.code is None  # twilio's client would have put 403 here


async def test_wrong_credentials_are_permanent(fake: FakeTwilio) -> None:
    wrong = TwilioSmsSender(
        account_sid=fake.account_sid,
        auth_token="not-the-token",
        from_number=FROM,
        base_url=fake.base_url,
    )
    try:
        error = await send_error(wrong)
    finally:
        await wrong.aclose()

    assert not error.retryable
    assert error.http_status == 401
    assert error.code == 20003
    assert fake.requests[0].authorized is False


async def test_connection_refused_is_retryable() -> None:
    server = await FakeTwilio().start()
    base_url = server.base_url
    await server.stop()
    twilio = TwilioSmsSender(
        account_sid=server.account_sid,
        auth_token=server.auth_token,
        from_number=FROM,
        base_url=base_url,
    )
    try:
        error = await send_error(twilio)
    finally:
        await twilio.aclose()

    assert error.retryable
    assert error.http_status is None
    assert error.code is None
    assert isinstance(error.__cause__, aiohttp.ClientError | OSError)


async def test_timeout_is_applied_and_retryable(fake: FakeTwilio) -> None:
    # The stock AsyncTwilioHttpClient ignores its timeout; this would hang.
    fake.script(Stall(seconds=3))
    twilio = TwilioSmsSender(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        from_number=FROM,
        base_url=fake.base_url,
        timeout=0.2,
    )
    try:
        async with asyncio.timeout(2):
            error = await send_error(twilio)
    finally:
        await twilio.aclose()

    assert error.retryable
    assert isinstance(error.__cause__, TimeoutError)


async def test_concurrent_sends_keep_their_own_retry_after(
    fake: FakeTwilio, sender: TwilioSmsSender
) -> None:
    fake.script(RateLimit(retry_after=3), 201, RateLimit(retry_after=5), 201)

    results = await asyncio.gather(
        *(sender.send(to=TO, body=f"n{i}") for i in range(4)), return_exceptions=True
    )

    errors = sorted(
        (r for r in results if isinstance(r, SmsSendError)), key=lambda e: e.retry_after or 0
    )
    assert [e.retry_after for e in errors] == [3.0, 5.0]
    assert sorted(r.provider_sid for r in results if isinstance(r, SentSms)) == sorted(
        m.sid for m in fake.accepted
    )


async def test_aclose_closes_the_http_session(sender: TwilioSmsSender) -> None:
    await sender.send(to=TO, body="hi")
    http = sender._http
    assert http is not None

    await sender.aclose()
    await sender.aclose()  # idempotent

    assert http.session.closed
    assert sender._http is None


async def test_fake_as_a_separate_process() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.fake_twilio",
        "--port",
        "0",
        "--account-sid",
        "AC" + "1" * 32,
        "--auth-token",
        "process-token",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    twilio = None
    try:
        async with asyncio.timeout(15):
            base_url = (await proc.stdout.readline()).decode().strip()
        assert base_url.startswith("http://127.0.0.1:")
        twilio = TwilioSmsSender(
            account_sid="AC" + "1" * 32,
            auth_token="process-token",
            from_number=FROM,
            base_url=base_url,
        )
        async with aiohttp.ClientSession(base_url) as control:
            async with control.post("/_fake/script", json=[429, [400, 21610]]) as response:
                assert await response.json() == {"queued": 2}

            assert (await send_error(twilio)).retryable
            assert (await send_error(twilio)).code == 21610
            sent = await twilio.send(to=TO, body="third time")

            async with control.get("/_fake/messages") as response:
                messages = await response.json()
            assert [(m["sid"], m["to"], m["body"]) for m in messages] == [
                (sent.provider_sid, TO, "third time")
            ]
            async with control.get("/_fake/requests") as response:
                assert len(await response.json()) == 3
            async with control.post("/_fake/reset") as response:
                assert response.status == 200
            async with control.get("/_fake/messages") as response:
                assert await response.json() == []
    finally:
        if twilio is not None:
            await twilio.aclose()
        proc.terminate()
        await proc.wait()


# --------------------------------------------------------------------------- Retry-After


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert _parse_retry_after("12") == 12.0
    assert _parse_retry_after("0.5") == 0.5
    assert _parse_retry_after("-3") == 0.0
    assert _parse_retry_after(None) is None
    assert _parse_retry_after("") is None
    assert _parse_retry_after("soon") is None
    assert _parse_retry_after("inf") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    seconds = _parse_retry_after(later)
    assert seconds is not None
    assert 25 <= seconds <= 31


def test_rfc9457_errors_are_classified_too() -> None:
    # twilio raises TwilioServiceException, not TwilioRestException, for problem+json bodies.
    def problem(status: int, code: int) -> TwilioServiceException:
        return TwilioServiceException(
            type_uri=f"https://www.twilio.com/docs/errors/{code}",
            title="Problem",
            status=status,
            code=code,
            detail="details here",
        )

    limited = _error_from_twilio(problem(429, 20429), {"Retry-After": "4"})
    assert (limited.retryable, limited.code, limited.retry_after) == (True, 20429, 4.0)
    opted_out = _error_from_twilio(problem(400, 21610), None)
    assert (opted_out.retryable, opted_out.opted_out) == (False, True)
    assert "details here" in opted_out.message


# --------------------------------------------------------------------------- console


async def test_console_sender_prints_records_and_returns_console_sid() -> None:
    stream = io.StringIO()
    console = ConsoleSmsSender(stream=stream)

    sent = await console.send(to=TO, body="Line one\nLine two", status_callback=CALLBACK)

    assert sent.status == "sent"
    assert sent.provider_sid.startswith("console-")
    assert len(sent.provider_sid) == len("console-") + 32
    [message] = console.outbox
    assert (message.sid, message.to, message.body, message.status_callback) == (
        sent.provider_sid,
        TO,
        "Line one\nLine two",
        CALLBACK,
    )
    printed = stream.getvalue()
    assert f"To:   {TO}" in printed
    assert "Body: Line one\n        Line two\n" in printed
    await console.aclose()


async def test_console_sender_writes_to_stderr_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    await ConsoleSmsSender().send(to=TO, body="hello there")

    captured = capsys.readouterr()
    assert "hello there" in captured.err
    assert captured.out == ""


async def test_console_outbox_keeps_only_the_last_messages() -> None:
    console = ConsoleSmsSender(keep_last=2, stream=io.StringIO())
    for n in range(5):
        await console.send(to=TO, body=f"message {n}")

    assert [m.body for m in console.outbox] == ["message 3", "message 4"]


# --------------------------------------------------------------------------- choice


TWILIO = {
    "twilio_account_sid": "AC" + "2" * 32,
    "twilio_auth_token": "token",
    "twilio_from_number": FROM,
}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"sms_backend": "console"}, ConsoleSmsSender),
        ({"sms_backend": "console", **TWILIO}, ConsoleSmsSender),
        ({"sms_backend": "auto"}, ConsoleSmsSender),
        ({"sms_backend": "auto", **TWILIO}, TwilioSmsSender),
        ({"sms_backend": "twilio", **TWILIO}, TwilioSmsSender),
        ({"sms_backend": " Twilio ", **TWILIO}, TwilioSmsSender),
    ],
)
async def test_build_sms_sender_picks_backend(
    overrides: dict[str, str], expected: type[ConsoleSmsSender | TwilioSmsSender]
) -> None:
    sender = build_sms_sender(Settings().with_overrides(**overrides))
    try:
        assert isinstance(sender, expected)
        assert sender.name == expected.name
    finally:
        await sender.aclose()


@pytest.mark.parametrize(
    "overrides",
    [
        {"sms_backend": "twilio"},
        {"sms_backend": "twilio", **TWILIO, "twilio_from_number": ""},
        {"sms_backend": "auto", **TWILIO, "twilio_from_number": ""},
        {"sms_backend": "carrier-pigeon"},
        {"sms_backend": "twilio", **TWILIO, "twilio_base_url": "127.0.0.1:9"},
    ],
)
def test_build_sms_sender_refuses_bad_configuration(overrides: dict[str, str]) -> None:
    with pytest.raises(SmsConfigurationError):
        build_sms_sender(Settings().with_overrides(**overrides))


async def test_built_twilio_sender_uses_the_base_url(fake: FakeTwilio) -> None:
    settings = Settings().with_overrides(
        sms_backend="twilio",
        twilio_account_sid=fake.account_sid,
        twilio_auth_token=fake.auth_token,
        twilio_from_number=FROM,
        twilio_base_url=fake.base_url,
    )
    sender = build_sms_sender(settings)
    try:
        sent = await sender.send(to=TO, body="via settings")
    finally:
        await sender.aclose()

    assert sent.provider_sid == fake.accepted[0].sid
