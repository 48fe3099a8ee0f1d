"""Structured logs (structlog): JSON lines in production, readable lines locally.

Every log line of the process - ours through ``logging.getLogger`` or structlog, and the
libraries' (uvicorn, arq) - goes through one structlog ``ProcessorFormatter``, so each
carries the context bound for the request or job in flight (``request_id``, and what a
job binds, e.g. ``message_id``) and passes one redaction step:

* booking link tokens (``bt.<hex>.<expiry>.<mac>``), API keys (``bk_...``) and the
  secrets of calendar feed URLs (``cf.<feed id>.<secret>``) are replaced, wherever they
  appear in a line;
* phone numbers (E.164) keep only their first and last two digits;
* values under keys that name a secret or a message body are dropped.

``BOOKING_LOG_FORMAT``: ``json`` | ``console`` | ``auto`` (the default: console when
stderr is a terminal, JSON otherwise - a container, a supervisor, a file).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import uuid
from collections.abc import Mapping, MutableMapping
from datetime import date, datetime
from typing import Any
from uuid import UUID

import msgspec
import structlog
from structlog.contextvars import bind_contextvars, bound_contextvars, clear_contextvars
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "access_logger",
    "bind_contextvars",
    "bound_contextvars",
    "clear_contextvars",
    "configure_logging",
    "new_request_id",
    "redact_text",
    "request_id_from_header",
]

_TOKEN = re.compile(r"bt\.[0-9a-f]{32}\.\d+\.[A-Za-z0-9_-]+")
_API_KEY = re.compile(r"\bbk_[A-Za-z0-9_-]{8,}")
_FEED = re.compile(r"\bcf\.([A-Za-z0-9_-]{22})\.[A-Za-z0-9_-]+")  # calendars.feeds tokens
_PHONE = re.compile(r"\+(\d{2})\d{5,11}(\d{2})\b")
_DROP_KEYS = frozenset(
    {"body", "password", "secret", "secret_key", "token", "auth_token", "authorization",
     "api_key", "key", "signature", "signing_secret"}
)  # fmt: skip
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def redact_text(text: str) -> str:
    """A log line's text without booking tokens, API keys or full phone numbers."""
    if "bt." in text:
        text = _TOKEN.sub("bt.[redacted]", text)
    if "bk_" in text:
        text = _API_KEY.sub("bk_[redacted]", text)
    if "cf." in text:  # the feed id stays: which feed was polled
        text = _FEED.sub(r"cf.\1.[redacted]", text)
    if "+" in text:
        text = _PHONE.sub(r"+\1***\2", text)
    return text


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: "[redacted]" if k in _DROP_KEYS else _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    if value is None or isinstance(value, int | float | UUID | datetime | date):
        return value  # written as JSON itself, nothing to hide
    return redact_text(repr(value))  # anything else is written as its repr: redacted too


def redact_event(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key, value in list(event_dict.items()):
        if key in _DROP_KEYS:
            event_dict[key] = "[redacted]"
        elif type(value) is str:  # most values: the fast path
            event_dict[key] = redact_text(value)
        elif not isinstance(value, int | float | None):
            event_dict[key] = _redact(value)
    return event_dict


_ENCODER = msgspec.json.Encoder(enc_hook=repr)  # what JSON cannot say, as its repr


def _dumps(event_dict: Any, **_: Any) -> str:
    """JSONRenderer's serializer: msgspec, ~3x json.dumps on a log line (bench/RESULTS.md)."""
    return _ENCODER.encode(event_dict).decode()


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_from_header(value: str | None) -> str:
    """The caller's X-Request-Id when it is a sane token (<= 64 chars), else a new one."""
    if value and _REQUEST_ID.match(value):
        return value
    return new_request_id()


def _quiet_caldav(record: logging.LogRecord) -> bool:
    """The caldav library logs what a server sent when it is not XML - a whole error page,
    at CRITICAL, with a traceback - and warns of each "deviation" it meets. Our sync says
    what failed on the connection itself (``last_error``, and the job's warning), so the
    library's lines are debug lines: written only when the process logs at DEBUG."""
    if record.levelno > logging.DEBUG and f"{os.sep}caldav{os.sep}" in record.pathname:
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    return True


def _wants_json(log_format: str) -> bool:
    if log_format == "json":
        return True
    if log_format == "console":
        return False
    return not sys.stderr.isatty()


ACCESS_LOGGER = "booking.access"
_access: Any = None


def access_logger() -> Any:
    """The access log: one line per request, the same processors, redaction and renderer
    as every other line, but written straight to stderr instead of through a stdlib
    ``LogRecord`` and handler - that detour cost the API ~0.07 ms of CPU per request
    (bench/RESULTS.md, 2026-12-02). Filtered at the process's level like the rest."""
    global _access
    if _access is None:
        _access = structlog.get_logger(ACCESS_LOGGER)  # before configure_logging: stdlib
    return _access


def _add_access_logger(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict["logger"] = ACCESS_LOGGER
    return event_dict


def configure_logging(level: str = "INFO", log_format: str = "auto", process: str = "") -> None:
    """Once per process (API start-up, worker start-up); idempotent."""
    global _access
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if process:
        shared.append(_add_process(process))
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if _wants_json(log_format)
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact_event,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_quiet_caldav)
    handler.set_name("booking")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "booking":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "arq", "arq.worker"):
        library = logging.getLogger(name)
        library.handlers = []
        library.propagate = True
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    direct: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _add_access_logger,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if process:
        direct.append(_add_process(process))
    _access = structlog.wrap_logger(
        structlog.PrintLogger(sys.stderr),
        processors=[*direct, redact_event, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
    )


def _add_process(process: str) -> Processor:
    def add(_: WrappedLogger, __: str, event_dict: MutableMapping[str, Any]) -> Any:
        event_dict.setdefault("process", process)
        return event_dict

    return add
