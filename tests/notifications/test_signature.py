"""Twilio webhook signatures, and the fake's signed status callbacks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from multidict import MultiDict

from booking.notifications.signature import (
    SIGNATURE_HEADER,
    sign_twilio_request,
    twilio_signature_valid,
)
from booking.notifications.sms import TwilioSmsSender
from tests.fakes.fake_twilio import FakeTwilio

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675310",
    "Digits": "1234",
    "From": "+14158675310",
    "To": "+18005551212",
}
# The worked example of https://www.twilio.com/docs/usage/security (auth token 12345).
DOCUMENTED_SIGNATURE = "GvWf1cFY/Q7PnoempGyD5oXAezc="


def test_documented_example_signature() -> None:
    assert sign_twilio_request(TOKEN, URL, PARAMS) == DOCUMENTED_SIGNATURE
    assert twilio_signature_valid(TOKEN, URL, PARAMS, DOCUMENTED_SIGNATURE)


def test_valid_signature_accepted() -> None:
    signature = sign_twilio_request("secret", "https://api.example.test/hook", {"A": "1"})
    assert twilio_signature_valid("secret", "https://api.example.test/hook", {"A": "1"}, signature)


def test_forged_signature_rejected() -> None:
    forged = sign_twilio_request("not-the-token", URL, PARAMS)
    assert not twilio_signature_valid(TOKEN, URL, PARAMS, forged)
    assert not twilio_signature_valid(TOKEN, URL, PARAMS, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")


@pytest.mark.parametrize("missing", [None, ""])
def test_missing_signature_rejected(missing: str | None) -> None:
    assert not twilio_signature_valid(TOKEN, URL, PARAMS, missing)


def test_empty_auth_token_never_validates() -> None:
    assert not twilio_signature_valid("", URL, PARAMS, sign_twilio_request("", URL, PARAMS))


@pytest.mark.parametrize(
    "tampered",
    [
        {**PARAMS, "Digits": "9999"},
        {**PARAMS, "Extra": "x"},
        {k: v for k, v in PARAMS.items() if k != "Digits"},
    ],
)
def test_tampered_params_rejected(tampered: dict[str, str]) -> None:
    assert not twilio_signature_valid(TOKEN, URL, tampered, DOCUMENTED_SIGNATURE)


@pytest.mark.parametrize(
    "other_url",
    [
        "https://mycompany.com/myapp.php?foo=1&bar=3",
        "http://mycompany.com/myapp.php?foo=1&bar=2",
        "https://evil.example/myapp.php?foo=1&bar=2",
    ],
)
def test_other_url_rejected(other_url: str) -> None:
    assert not twilio_signature_valid(TOKEN, other_url, PARAMS, DOCUMENTED_SIGNATURE)


def test_default_port_is_tolerated_both_ways() -> None:
    # Twilio sometimes signs with :443 and sometimes without; the validator tries both.
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert twilio_signature_valid(TOKEN, with_port, PARAMS, DOCUMENTED_SIGNATURE)
    assert twilio_signature_valid(TOKEN, URL, PARAMS, sign_twilio_request(TOKEN, with_port, PARAMS))


def test_multidict_params_are_checked_as_received() -> None:
    form = MultiDict([("MediaUrl", "b"), ("MediaUrl", "a"), ("To", "+1")])
    signature = sign_twilio_request(TOKEN, URL, form)
    assert twilio_signature_valid(TOKEN, URL, form, signature)
    assert not twilio_signature_valid(
        TOKEN, URL, MultiDict([("MediaUrl", "a"), ("To", "+1")]), signature
    )


# --------------------------------------------------------------------------- callbacks


class CallbackReceiver:
    """A stand-in for the API's status-callback endpoint."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[str, dict[str, str], dict[str, str]]] = asyncio.Queue()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        await self.received.put((str(request.url), form, dict(request.headers)))
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhooks/twilio/status", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/webhooks/twilio/status?booking=42"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    server = CallbackReceiver()
    await server.start()
    yield server
    await server.stop()


async def test_fake_status_callback_is_signed_like_twilio(receiver: CallbackReceiver) -> None:
    async with FakeTwilio() as fake:
        sender = TwilioSmsSender(
            account_sid=fake.account_sid,
            auth_token=fake.auth_token,
            from_number="+15005550006",
            base_url=fake.base_url,
        )
        try:
            sent = await sender.send(to="+15551230001", body="hi", status_callback=receiver.url)
        finally:
            await sender.aclose()

        status = await fake.send_status_callback(sent.provider_sid, "undelivered", 30003)

    assert status == 204
    url, form, headers = receiver.received.get_nowait()
    assert url == receiver.url
    assert form == {
        "AccountSid": fake.account_sid,
        "ApiVersion": "2010-04-01",
        "From": "+15005550006",
        "MessageSid": sent.provider_sid,
        "MessageStatus": "undelivered",
        "SmsSid": sent.provider_sid,
        "SmsStatus": "undelivered",
        "To": "+15551230001",
        "ErrorCode": "30003",
    }
    assert twilio_signature_valid(fake.auth_token, url, form, headers[SIGNATURE_HEADER])
    assert not twilio_signature_valid("other-token", url, form, headers[SIGNATURE_HEADER])
    assert fake.message(sent.provider_sid).status == "undelivered"


async def test_fake_status_callback_without_error_code(receiver: CallbackReceiver) -> None:
    async with FakeTwilio() as fake:
        sender = TwilioSmsSender(
            account_sid=fake.account_sid,
            auth_token=fake.auth_token,
            from_number="+15005550006",
            base_url=fake.base_url,
        )
        try:
            sent = await sender.send(to="+15551230001", body="hi", status_callback=receiver.url)
        finally:
            await sender.aclose()
        await fake.send_status_callback(sent.provider_sid, "delivered")

    _, form, headers = receiver.received.get_nowait()
    assert "ErrorCode" not in form
    assert form["MessageStatus"] == "delivered"
    assert twilio_signature_valid(fake.auth_token, receiver.url, form, headers[SIGNATURE_HEADER])
