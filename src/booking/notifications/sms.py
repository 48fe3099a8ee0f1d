"""Sending SMS: a small protocol with a Twilio and a console implementation.

Senders raise :class:`SmsSendError` for every failure they understand; its
``retryable`` flag is the only thing the worker's retry policy looks at.
Note that a retryable failure is not proof the message was *not* sent (a
timeout or a 5xx may follow acceptance), so a retried job can text twice.
"""

from __future__ import annotations

import base64
import math
import sys
import uuid
from collections import deque
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TextIO
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from booking.settings import Settings

# Twilio error codes worth naming: all are permanent for this recipient.
TWILIO_INVALID_TO = 21211
TWILIO_REGION_NOT_ENABLED = 21408
TWILIO_OPTED_OUT = 21610
TWILIO_TO_UNREACHABLE = 21612
TWILIO_TO_NOT_MOBILE = 21614

DEFAULT_TWILIO_TIMEOUT = 10.0


@dataclass(frozen=True)
class SentSms:
    provider_sid: str  # Twilio "SM..." sid, or "console-<hex>"
    status: str  # provider status at acceptance: "queued", "accepted", "sent", ...


class SmsSendError(Exception):
    """A send failed; ``retryable`` says whether trying again can help."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        code: int | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code  # Twilio error code, e.g. 21610
        self.http_status = http_status
        self.retry_after = retry_after  # seconds, from Retry-After when given

    @property
    def opted_out(self) -> bool:
        """The recipient replied STOP; nothing may be sent until they opt back in."""
        return self.code == TWILIO_OPTED_OUT

    def __repr__(self) -> str:
        return (
            f"SmsSendError({self.message!r}, retryable={self.retryable}, code={self.code}, "
            f"http_status={self.http_status}, retry_after={self.retry_after})"
        )


class SmsConfigurationError(ValueError):
    """Settings ask for a backend that cannot work; raised at start-up."""


class SmsSender(Protocol):
    name: str

    async def send(self, *, to: str, body: str, status_callback: str | None = None) -> SentSms: ...

    async def aclose(self) -> None: ...


# --------------------------------------------------------------------------- console


@dataclass(frozen=True)
class ConsoleMessage:
    sid: str
    to: str
    body: str
    status_callback: str | None
    sent_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class ConsoleSmsSender:
    """Prints each message as a readable block and keeps the last few in ``outbox``.

    It writes to a stream rather than through logging on purpose: with logging
    unconfigured, INFO records vanish, and a JSON renderer would mangle the
    multi-line body that a demo wants to read.
    """

    name: str = "console"

    def __init__(self, *, keep_last: int = 100, stream: TextIO | None = None) -> None:
        self._outbox: deque[ConsoleMessage] = deque(maxlen=keep_last)
        self._stream = stream  # None: sys.stderr at write time (pytest's capture swaps it)

    @property
    def outbox(self) -> list[ConsoleMessage]:
        """The most recent messages, oldest first."""
        return list(self._outbox)

    async def send(self, *, to: str, body: str, status_callback: str | None = None) -> SentSms:
        message = ConsoleMessage(
            sid=f"console-{uuid.uuid4().hex}", to=to, body=body, status_callback=status_callback
        )
        self._outbox.append(message)
        stream = self._stream if self._stream is not None else sys.stderr
        stream.write(_render(message))
        stream.flush()
        return SentSms(provider_sid=message.sid, status="sent")

    async def aclose(self) -> None:
        return None


def _render(message: ConsoleMessage) -> str:
    body_lines = message.body.splitlines() or [""]
    indented = "\n".join(
        [f"  Body: {body_lines[0]}"] + [f"        {line}" for line in body_lines[1:]]
    )
    return f"----- SMS {message.sid} -----\n  To:   {message.to}\n{indented}\n-----\n"


# --------------------------------------------------------------------------- Twilio

# Headers of the last Twilio response seen in the current task. The twilio
# exceptions drop response headers, and Retry-After lives there; a context
# variable keeps concurrent sends sharing one HTTP client apart.
_last_response_headers: ContextVar[Mapping[str, str] | None] = ContextVar(
    "twilio_last_response_headers", default=None
)


class _TwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # twilio is untyped
    """twilio's aiohttp client with four fixes for our use.

    * applies the timeout given to the constructor (the stock async client stores
      it but sends ``timeout=None`` with each request, which aiohttp reads as
      "no timeout at all");
    * optionally rewrites scheme and host of every URL to ``base_url`` so the
      real client can talk to a fake Twilio;
    * records the response headers for :data:`_last_response_headers`;
    * sends credentials as a plain Authorization header.
    """

    def __init__(self, *, timeout: float, base_url: str | None) -> None:
        super().__init__(timeout=timeout)
        self._base = urlsplit(base_url) if base_url else None

    def _rewrite(self, url: str) -> str:
        if self._base is None:
            return url
        target = urlsplit(url)
        path = self._base.path.rstrip("/") + target.path
        return urlunsplit((self._base.scheme, self._base.netloc, path, target.query, ""))

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (twilio's signature)
        allow_redirects: bool = False,
    ) -> Any:
        if auth is not None:
            # Sent as a header: aiohttp 3.14 deprecates the BasicAuth the stock client uses.
            headers = {**(headers or {}), "Authorization": _basic_auth(*auth)}
        body: object = data
        if isinstance(data, dict):
            # The form twilio sends (its Content-Type header says so), encoded once here:
            # aiohttp's FormData for the same fields was ~7 % of a worker's CPU per SMS.
            body = urlencode(data, doseq=True).encode()
        response = await super().request(
            method,
            self._rewrite(url),
            params=params,
            data=body,
            headers=headers,
            auth=None,
            timeout=timeout if timeout is not None else self.timeout,
            allow_redirects=allow_redirects,
        )
        _last_response_headers.set(response.headers)
        return response


def _basic_auth(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode("ascii")


class TwilioSmsSender:
    """Sends through Twilio's Messages API with the official client (async)."""

    name: str = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str | None = None,
        timeout: float = DEFAULT_TWILIO_TIMEOUT,
    ) -> None:
        if not (account_sid and auth_token and from_number):
            raise SmsConfigurationError("Twilio needs an account sid, an auth token and a From")
        if base_url:
            parts = urlsplit(base_url)
            if parts.scheme not in {"http", "https"} or not parts.netloc:
                raise SmsConfigurationError(
                    f"Twilio base URL must be http(s)://host[:port], got {base_url!r}"
                )
        if timeout <= 0:
            raise SmsConfigurationError("Twilio timeout must be positive")
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._from_number = from_number
        self._base_url = base_url or None
        self._timeout = timeout
        self._http: _TwilioHttpClient | None = None
        self._client: Any = None

    def _get_client(self) -> Any:
        # Built on first use: the aiohttp session inside needs a running loop,
        # and must belong to the loop that will use it.
        if self._client is None:
            self._http = _TwilioHttpClient(timeout=self._timeout, base_url=self._base_url)
            self._client = Client(self._account_sid, self._auth_token, http_client=self._http)
        return self._client

    async def send(self, *, to: str, body: str, status_callback: str | None = None) -> SentSms:
        client = self._get_client()
        options: dict[str, str] = {"to": to, "from_": self._from_number, "body": body}
        if status_callback:
            options["status_callback"] = status_callback
        token = _last_response_headers.set(None)
        try:
            message = await client.messages.create_async(**options)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _error_from_twilio(exc, _last_response_headers.get()) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            detail = str(exc) or type(exc).__name__
            raise SmsSendError(f"Twilio unreachable: {detail}", retryable=True) from exc
        except (TwilioException, ValueError) as exc:
            # A response we cannot read. Twilio may have accepted the message,
            # so retrying could text twice: let a person look instead.
            raise SmsSendError(f"unreadable Twilio response: {exc}", retryable=False) from exc
        finally:
            _last_response_headers.reset(token)
        sid = message.sid
        if not sid:
            raise SmsSendError("Twilio accepted the message without a sid", retryable=False)
        return SentSms(provider_sid=str(sid), status=str(message.status or "queued"))

    async def aclose(self) -> None:
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.close()


def _error_from_twilio(exc: Any, headers: Mapping[str, str] | None) -> SmsSendError:
    status = int(exc.status)
    code: int | None = exc.code
    if code == status:
        # twilio fills `code` with the HTTP status when the body carries none.
        code = None
    message = getattr(exc, "msg", None) or getattr(exc, "detail", None) or exc.title
    text = f"Twilio HTTP {status}" + (f" error {code}" if code else "") + f": {message}"
    if status == 429:
        retry_after = _parse_retry_after(headers.get("Retry-After") if headers else None)
        return SmsSendError(
            text, retryable=True, code=code, http_status=status, retry_after=retry_after
        )
    # 408 and 5xx are Twilio's trouble, not the message's; every other 4xx
    # (bad number, opted out, bad credentials) fails the same way next time.
    retryable = status >= 500 or status == 408
    return SmsSendError(text, retryable=retryable, code=code, http_status=status)


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


# --------------------------------------------------------------------------- choice


def sms_backend_in_use(settings: Settings) -> str:
    """"console" or "twilio": the sender the settings select (``booking up`` reports it).

    Misconfiguration raises :class:`SmsConfigurationError`.
    """
    backend = settings.sms_backend.strip().lower()
    if backend not in {"auto", "console", "twilio"}:
        raise SmsConfigurationError(
            f"BOOKING_SMS_BACKEND must be auto, console or twilio, got {settings.sms_backend!r}"
        )
    if backend == "console" or (backend == "auto" and not settings.twilio_configured):
        return "console"
    if not settings.twilio_configured:
        raise SmsConfigurationError(
            "BOOKING_SMS_BACKEND=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
        )
    if not settings.twilio_from_number:
        raise SmsConfigurationError("Twilio is configured but TWILIO_FROM_NUMBER is empty")
    return "twilio"


def build_sms_sender(settings: Settings) -> SmsSender:
    """The sender the settings ask for; misconfiguration fails here, at start-up."""
    if sms_backend_in_use(settings) == "console":
        return ConsoleSmsSender()
    return TwilioSmsSender(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        from_number=settings.twilio_from_number,
        base_url=settings.twilio_base_url or None,
    )
