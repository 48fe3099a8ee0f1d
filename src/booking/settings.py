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
DEFAULT_SECRET_KEY = "local-dev-secret-change-me"  # noqa: S105 - public, local use only
# BOOKING_ENV values that mean "a developer's machine, the demo or the test suite":
# only there may the API and worker run with the public default secret key.
LOCAL_ENVIRONMENTS = frozenset({"development", "test"})


class InsecureConfiguration(RuntimeError):
    """A setting that is only safe on a developer's machine, outside local development."""


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
    # Where this process runs: "production" (the default) or a local environment
    # (LOCAL_ENVIRONMENTS: "development", "test"), which alone may use the default secret key.
    environment: str = "production"
    # Secret used to sign per-booking customer links (and, unless BOOKING_ENCRYPTION_KEYS
    # is set, the key that encrypts webhook signing secrets). The default is public:
    # outside local development the API and worker refuse to start with it.
    secret_key: str = DEFAULT_SECRET_KEY
    # The previous secret key during a rotation: links it signed still open, secrets it
    # encrypted still decrypt (docs/security.md, "Rotating secrets").
    previous_secret_key: str = ""
    # Fernet keys (comma-separated, newest first) encrypting webhook signing secrets at rest;
    # empty: one key derived from secret_key (and previous_secret_key).
    encryption_keys: str = ""
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
    # Marketplaces (booking.marketplace): where booking notifications go (the Maps Booking
    # API; a listing may name its own) and the directory the feeds are written to.
    marketplace_notify_url: str = "https://mapsbooking.googleapis.com"
    marketplace_feed_dir: str = ""  # "" = <tmp>/booking-marketplace-feeds
    # Request bodies: bytes (counted as they arrive) and JSON nesting depth (booking.limits).
    max_body_bytes: int = 1_048_576
    max_json_depth: int = 32
    # The API server (booking.serving): seconds for a request's headers to arrive, seconds
    # an idle keep-alive connection stays open, concurrent connections per process (0 = no cap).
    header_timeout_seconds: int = 10
    keep_alive_seconds: int = 5
    max_connections: int = 1000
    # Requests per minute per client address for unauthenticated or failed-authentication
    # requests; and for the public /b/ pages per link (five times that per address, since
    # customers behind one NAT share one). 0 = no limit.
    anonymous_rate_limit_per_minute: int = 120
    page_rate_limit_per_minute: int = 60
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
            environment=_env("BOOKING_ENV", cls.environment).strip().lower(),
            secret_key=_env("BOOKING_SECRET_KEY", cls.secret_key),
            previous_secret_key=_env("BOOKING_PREVIOUS_SECRET_KEY", cls.previous_secret_key),
            encryption_keys=_env("BOOKING_ENCRYPTION_KEYS", cls.encryption_keys),
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
            marketplace_notify_url=_env(
                "BOOKING_MARKETPLACE_NOTIFY_URL", cls.marketplace_notify_url
            ),
            marketplace_feed_dir=_env("BOOKING_MARKETPLACE_FEED_DIR", cls.marketplace_feed_dir),
            max_body_bytes=_env_int("BOOKING_MAX_BODY_BYTES", cls.max_body_bytes),
            max_json_depth=_env_int("BOOKING_MAX_JSON_DEPTH", cls.max_json_depth),
            header_timeout_seconds=_env_int(
                "BOOKING_HEADER_TIMEOUT_SECONDS", cls.header_timeout_seconds
            ),
            keep_alive_seconds=_env_int("BOOKING_KEEP_ALIVE_SECONDS", cls.keep_alive_seconds),
            max_connections=_env_int("BOOKING_MAX_CONNECTIONS", cls.max_connections),
            anonymous_rate_limit_per_minute=_env_int(
                "BOOKING_ANONYMOUS_RATE_LIMIT_PER_MINUTE", cls.anonymous_rate_limit_per_minute
            ),
            page_rate_limit_per_minute=_env_int(
                "BOOKING_PAGE_RATE_LIMIT_PER_MINUTE", cls.page_rate_limit_per_minute
            ),
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

    @property
    def link_secrets(self) -> tuple[str, ...]:
        """Keys a customer link may be signed with: the current one, then the previous."""
        return tuple(key for key in (self.secret_key, self.previous_secret_key) if key)

    @property
    def is_local(self) -> bool:
        return self.environment in LOCAL_ENVIRONMENTS

    def check_deployable(self) -> None:
        """Refuse what is only safe locally (called by the API and worker at start-up)."""
        if self.is_local:
            return
        if self.secret_key == DEFAULT_SECRET_KEY or len(self.secret_key) < 16:
            raise InsecureConfiguration(
                "BOOKING_SECRET_KEY is unset (or shorter than 16 characters): anyone could "
                "sign customer links with the public default. Set it to a long random value, "
                "e.g. BOOKING_SECRET_KEY=$(python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'), or set BOOKING_ENV=development on a "
                "developer's machine (docs/security.md)."
            )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
