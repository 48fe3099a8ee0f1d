"""A local fake of Twilio's Messages API, for tests, benchmarks and fault drills.

In process::

    async with FakeTwilio() as fake:
        fake.script(429, 503, (400, 21610))   # next three sends fail, then 201s
        ...                                   # point TwilioSmsSender at fake.base_url
        fake.accepted[-1].body

As a process (prints its base URL as the first line on stdout)::

    python -m tests.fakes.fake_twilio --port 0 --account-sid AC... --auth-token ...

Control endpoints (no auth, loopback only):
    GET  /_fake/messages         accepted messages (JSON list)
    GET  /_fake/requests         every Messages.json request received
    POST /_fake/script           JSON list of outcomes, or {"outcomes": [...], "default": o}
    POST /_fake/reset            forget requests, messages and script
    POST /_fake/status-callback  {"sid": "SM...", "status": "delivered", "error_code": null}

An outcome is 201 / 429 / 500 / 503, a pair [400, 21610], or an object:
{"kind": "accept"}, {"kind": "rate_limit", "retry_after": 2},
{"kind": "server_error", "status": 503}, {"kind": "reject", "status": 400, "code": 21610},
{"kind": "stall", "seconds": 5} (answers 201 late: drives client timeouts).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import signal
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

DEFAULT_ACCOUNT_SID = "AC" + "fa4e" * 8
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token"
API_VERSION = "2010-04-01"

ERROR_MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "Invalid 'To' Phone Number",
    21408: (
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number"
    ),
    21602: "Message body is required.",
    21603: "The 'From' number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: (
        "The 'To' phone number is not currently reachable using the 'From' phone number via SMS."
    ),
    21614: "'To' number is not a valid mobile number",
}


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Accept:
    status: str = "queued"


@dataclass(frozen=True)
class RateLimit:
    retry_after: float = 1.0


@dataclass(frozen=True)
class ServerError:
    status: int = 500


@dataclass(frozen=True)
class Reject:
    status: int = 400
    code: int | None = 21211
    message: str | None = None


@dataclass(frozen=True)
class Stall:
    """Wait, then accept: Twilio may accept a message the client gave up on."""

    seconds: float = 30.0


Outcome = Accept | RateLimit | ServerError | Reject | Stall
OutcomeSpec = Outcome | int | tuple[int, int] | list[Any] | dict[str, Any]


def parse_outcome(spec: OutcomeSpec) -> Outcome:
    """An outcome from shorthand: 201, 429, 503, (400, 21610) or a JSON object."""
    if isinstance(spec, Accept | RateLimit | ServerError | Reject | Stall):
        return spec
    if isinstance(spec, bool):
        raise ValueError(f"not an outcome: {spec!r}")
    if isinstance(spec, int):
        if spec in (200, 201):
            return Accept()
        if spec == 429:
            return RateLimit()
        if spec >= 500:
            return ServerError(spec)
        if 400 <= spec < 500:
            return Reject(status=spec, code=None)
        raise ValueError(f"not an outcome: {spec!r}")
    if isinstance(spec, tuple | list):
        status, code = spec
        if int(status) == 429:
            return RateLimit()
        return Reject(status=int(status), code=int(code))
    if isinstance(spec, dict):
        kind = spec.get("kind")
        if kind == "accept":
            return Accept(status=str(spec.get("status", "queued")))
        if kind == "rate_limit":
            return RateLimit(retry_after=float(spec.get("retry_after", 1.0)))
        if kind == "server_error":
            return ServerError(status=int(spec.get("status", 500)))
        if kind == "reject":
            code = spec.get("code")
            return Reject(
                status=int(spec.get("status", 400)),
                code=None if code is None else int(code),
                message=spec.get("message"),
            )
        if kind == "stall":
            return Stall(seconds=float(spec.get("seconds", 30.0)))
    raise ValueError(f"not an outcome: {spec!r}")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class RecordedRequest:
    account_sid: str  # from the URL path
    form: dict[str, str]
    authorized: bool
    received_at: datetime

    @property
    def to(self) -> str | None:
        return self.form.get("To")

    @property
    def from_(self) -> str | None:
        return self.form.get("From")

    @property
    def body(self) -> str | None:
        return self.form.get("Body")

    @property
    def status_callback(self) -> str | None:
        return self.form.get("StatusCallback")

    def to_json(self) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "form": self.form,
            "authorized": self.authorized,
            "received_at": self.received_at.isoformat(),
        }


@dataclass
class AcceptedMessage:
    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    status: str
    date_created: datetime
    callbacks: list[dict[str, str]] = field(default_factory=list)  # status callbacks sent

    def resource(self) -> dict[str, Any]:
        """The JSON Twilio answers with (a Message resource)."""
        created = format_datetime(self.date_created)
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": created,
            "date_sent": None,
            "date_updated": created,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": self.to,
            "uri": f"{uri}.json",
        }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["date_created"] = self.date_created.isoformat()
        return data


def error_response(status: int, code: int, message: str | None = None) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "message": message or ERROR_MESSAGES.get(code, "Error"),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
    )


# --------------------------------------------------------------------------- server


class FakeTwilio:
    def __init__(
        self,
        *,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.accepted: list[AcceptedMessage] = []
        self.default_outcome: Outcome = Accept()
        self._script: deque[Outcome] = deque()
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    # lifecycle ---------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("FakeTwilio is not running")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> FakeTwilio:
        app = web.Application()
        app.router.add_post(
            f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json", self._create_message
        )
        app.router.add_get("/_fake/messages", self._control_messages)
        app.router.add_get("/_fake/requests", self._control_requests)
        app.router.add_post("/_fake/script", self._control_script)
        app.router.add_post("/_fake/reset", self._control_reset)
        app.router.add_post("/_fake/status-callback", self._control_status_callback)
        self._stopping = asyncio.Event()
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeTwilio:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # programming ---------------------------------------------------------------

    def script(self, *outcomes: OutcomeSpec) -> None:
        """Queue outcomes for the next sends, first in first out; then the default."""
        self._script.extend(parse_outcome(o) for o in outcomes)

    def reset(self) -> None:
        self.requests.clear()
        self.accepted.clear()
        self._script.clear()
        self.default_outcome = Accept()

    def message(self, sid: str) -> AcceptedMessage:
        for message in self.accepted:
            if message.sid == sid:
                return message
        raise KeyError(sid)

    async def send_status_callback(
        self, message_sid: str, status: str, error_code: int | None = None
    ) -> int:
        """POST a signed status callback, as Twilio would; returns the HTTP status."""
        message = self.message(message_sid)
        if not message.status_callback:
            raise ValueError(f"message {message_sid} was sent without a StatusCallback")
        form = {
            "AccountSid": message.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.from_,
            "MessageSid": message.sid,
            "MessageStatus": status,
            "SmsSid": message.sid,
            "SmsStatus": status,
            "To": message.to,
        }
        if error_code is not None:
            form["ErrorCode"] = str(error_code)
        url = message.status_callback
        headers = {
            "X-Twilio-Signature": RequestValidator(self.auth_token).compute_signature(url, form),
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }
        message.status = status
        message.callbacks.append(form)
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, data=form, headers=headers) as response,
        ):
            await response.read()
            return response.status

    # Messages.json ---------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        try:
            auth = aiohttp.BasicAuth.decode(header)
        except ValueError:
            return False
        return hmac.compare_digest(auth.login, self.account_sid) and hmac.compare_digest(
            auth.password, self.auth_token
        )

    async def _create_message(self, request: web.Request) -> web.Response:
        account_sid = request.match_info["account_sid"]
        posted = await request.post()
        form = {key: str(value) for key, value in posted.items()}
        authorized = self._authorized(request)
        self.requests.append(
            RecordedRequest(account_sid, form, authorized, received_at=datetime.now(UTC))
        )
        if not authorized:
            response = error_response(401, 20003)
            response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return response
        if account_sid != self.account_sid:
            return error_response(404, 20404)

        outcome = self._script.popleft() if self._script else self.default_outcome
        if isinstance(outcome, RateLimit):
            response = error_response(429, 20429)
            response.headers["Retry-After"] = f"{outcome.retry_after:g}"
            return response
        if isinstance(outcome, ServerError):
            return error_response(outcome.status, 20503 if outcome.status == 503 else 20500)
        if isinstance(outcome, Reject):
            if outcome.code is None:
                return web.json_response(
                    {"message": outcome.message or "Bad Request", "status": outcome.status},
                    status=outcome.status,
                )
            return error_response(outcome.status, outcome.code, outcome.message)
        if isinstance(outcome, Stall):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), outcome.seconds)

        # Twilio's own validation, the cheap part.
        if not form.get("To"):
            return error_response(400, 21604)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return error_response(400, 21603)
        if not form.get("Body") and not form.get("MediaUrl"):
            return error_response(400, 21602)
        message = AcceptedMessage(
            sid=f"SM{uuid.uuid4().hex}",
            account_sid=account_sid,
            to=form["To"],
            from_=form.get("From", ""),
            body=form.get("Body", ""),
            status_callback=form.get("StatusCallback") or None,
            status=outcome.status if isinstance(outcome, Accept) else "queued",
            date_created=datetime.now(UTC).replace(microsecond=0),
        )
        self.accepted.append(message)
        return web.json_response(message.resource(), status=201)

    # control ---------------------------------------------------------------------

    async def _control_messages(self, request: web.Request) -> web.Response:
        return web.json_response([m.to_json() for m in self.accepted])

    async def _control_requests(self, request: web.Request) -> web.Response:
        return web.json_response([r.to_json() for r in self.requests])

    async def _control_script(self, request: web.Request) -> web.Response:
        payload = await request.json()
        try:
            outcomes: Iterable[OutcomeSpec]
            if isinstance(payload, dict):
                outcomes = payload.get("outcomes", [])
                if "default" in payload:
                    self.default_outcome = parse_outcome(payload["default"])
            else:
                outcomes = payload
            self.script(*outcomes)
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"queued": len(self._script)})

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})

    async def _control_status_callback(self, request: web.Request) -> web.Response:
        payload = await request.json()
        try:
            status = await self.send_status_callback(
                payload["sid"], payload["status"], payload.get("error_code")
            )
        except (KeyError, ValueError) as exc:
            return web.json_response({"error": repr(exc)}, status=404)
        except aiohttp.ClientError as exc:
            return web.json_response({"error": repr(exc)}, status=502)
        return web.json_response({"callback_status": status})


# --------------------------------------------------------------------------- process


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeTwilio(
        account_sid=args.account_sid, auth_token=args.auth_token, host=args.host, port=args.port
    )
    await fake.start()
    print(fake.base_url, flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    try:
        await done.wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Twilio Messages API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
