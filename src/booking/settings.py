"""One frozen Settings object read from environment variables.

Nothing here runs at import time: call :func:`get_settings` (cached) or build a
``Settings`` yourself in tests.

Where the database and Redis are, first match wins:

1. ``DATABASE_URL`` / ``REDIS_URL``;
2. the local stack's URLs (``scripts/dev.sh``, ``booking up``) on
   ``BOOKING_LOCAL_PG_PORT`` / ``BOOKING_LOCAL_REDIS_PORT`` (database ``booking``,
   Redis db 0), when those are set;
3. the local stack's default ports 54329 / 63799.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

DEFAULT_PG_PORT = 54329
DEFAULT_REDIS_PORT = 63799


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:  # fail loudly at start-up, never later
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def local_database_url(port: int = DEFAULT_PG_PORT, dbname: str = "booking") -> str:
    """The local stack's database URL (see booking.localstack)."""
    return f"postgresql://postgres@127.0.0.1:{port}/{dbname}"


def local_redis_url(port: int = DEFAULT_REDIS_PORT, db: int = 0) -> str:
    return f"redis://127.0.0.1:{port}/{db}"


@dataclass(frozen=True)
class Settings:
    database_url: str = local_database_url()
    redis_url: str = local_redis_url()
    # Secret used to sign per-booking customer links. The default is only safe
    # for local use; production must set BOOKING_SECRET_KEY.
    secret_key: str = "local-dev-secret-change-me"  # noqa: S105 - local default only
    public_base_url: str = "http://127.0.0.1:8000"
    hold_ttl_seconds: int = 600
    db_pool_min: int = 2
    db_pool_max: int = 20
    # How long `booking migrate` waits for the database to accept connections.
    db_wait_seconds: int = 60
    debug: bool = False
    log_level: str = "INFO"
    # Twilio: when account_sid and auth_token are set the real client is used,
    # otherwise messages go to the console sender.
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from_number: str = ""
    twilio_base_url: str = ""  # override of https://api.twilio.com (tests: fake server)
    sms_backend: str = "auto"  # auto | console | twilio
    # Requests per minute per API key or booking link (0 = no limit); a key may override it.
    rate_limit_per_minute: int = 1200
    # Outbound requests to partner-supplied URLs (booking.outbound): strict by default.
    # Local development, tests and the demo allow http and loopback/private addresses.
    outbound_allow_http: bool = False
    outbound_allow_private: bool = False
    # Request bodies: bytes (counted as they arrive) and JSON nesting depth (booking.limits).
    max_body_bytes: int = 1_048_576
    max_json_depth: int = 32
    # Operations (docs/operations.md): logs, metrics, readiness.
    log_format: str = "auto"  # json | console | auto (console on a terminal, else JSON)
    access_log: bool = True  # one structured line per request, tokens redacted
    metrics_enabled: bool = True  # request metrics and /metrics
    # /metrics answers a bearer of this token; without one, only loopback callers.
    metrics_token: str = ""
    worker_metrics_port: int = 0  # the worker's own /metrics (0: none)
    worker_metrics_host: str = "127.0.0.1"
    # /ready fails when the oldest committed outbox row waits longer than this.
    ready_outbox_max_age_seconds: int = 60
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        pg_port = _env_int("BOOKING_LOCAL_PG_PORT", DEFAULT_PG_PORT)
        redis_port = _env_int("BOOKING_LOCAL_REDIS_PORT", DEFAULT_REDIS_PORT)
        return cls(
            database_url=_env("DATABASE_URL", local_database_url(pg_port)),
            redis_url=_env("REDIS_URL", local_redis_url(redis_port)),
            secret_key=_env("BOOKING_SECRET_KEY", cls.secret_key),
            public_base_url=_env("BOOKING_PUBLIC_BASE_URL", cls.public_base_url).rstrip("/"),
            hold_ttl_seconds=_env_int("BOOKING_HOLD_TTL_SECONDS", cls.hold_ttl_seconds),
            db_pool_min=_env_int("BOOKING_DB_POOL_MIN", cls.db_pool_min),
            db_pool_max=_env_int("BOOKING_DB_POOL_MAX", cls.db_pool_max),
            db_wait_seconds=_env_int("BOOKING_DB_WAIT_SECONDS", cls.db_wait_seconds),
            debug=_env_bool("BOOKING_DEBUG", cls.debug),
            log_level=_env("BOOKING_LOG_LEVEL", cls.log_level),
            twilio_account_sid=_env("TWILIO_ACCOUNT_SID", cls.twilio_account_sid),
            twilio_auth_token=_env("TWILIO_AUTH_TOKEN", cls.twilio_auth_token),
            twilio_from_number=_env("TWILIO_FROM_NUMBER", cls.twilio_from_number),
            twilio_base_url=_env("BOOKING_TWILIO_BASE_URL", cls.twilio_base_url),
            sms_backend=_env("BOOKING_SMS_BACKEND", cls.sms_backend),
            rate_limit_per_minute=_env_int(
                "BOOKING_RATE_LIMIT_PER_MINUTE", cls.rate_limit_per_minute
            ),
            outbound_allow_http=_env_bool("BOOKING_OUTBOUND_ALLOW_HTTP", cls.outbound_allow_http),
            outbound_allow_private=_env_bool(
                "BOOKING_OUTBOUND_ALLOW_PRIVATE", cls.outbound_allow_private
            ),
            max_body_bytes=_env_int("BOOKING_MAX_BODY_BYTES", cls.max_body_bytes),
            max_json_depth=_env_int("BOOKING_MAX_JSON_DEPTH", cls.max_json_depth),
            log_format=_env("BOOKING_LOG_FORMAT", cls.log_format),
            access_log=_env_bool("BOOKING_ACCESS_LOG", cls.access_log),
            metrics_enabled=_env_bool("BOOKING_METRICS", cls.metrics_enabled),
            metrics_token=_env("BOOKING_METRICS_TOKEN", cls.metrics_token),
            worker_metrics_port=_env_int("BOOKING_WORKER_METRICS_PORT", cls.worker_metrics_port),
            worker_metrics_host=_env("BOOKING_WORKER_METRICS_HOST", cls.worker_metrics_host),
            ready_outbox_max_age_seconds=_env_int(
                "BOOKING_READY_OUTBOX_MAX_AGE_SECONDS", cls.ready_outbox_max_age_seconds
            ),
        )

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def twilio_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
