"""The Prometheus metrics (prometheus-client), one list for API and worker.

Names follow Prometheus conventions (``booking_`` prefix, base units, ``_total`` for
counters); every label has a small fixed set of values (routes are templates, never ids).
Counters live in the process that counts (API or worker); the gauges that describe shared
state (outbox backlog, worker heartbeats, pool use) are read when scraped.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# --------------------------------------------------------------------------- API
HTTP_REQUESTS = Counter(
    "booking_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "booking_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
BOOKINGS = Counter(
    "booking_bookings_total",
    "Booking attempts through the API by outcome (created, conflict, policy_refused)",
    ["outcome"],
)
DB_POOL = Gauge("booking_db_pool_connections", "Database pool connections by state", ["state"])
OUTBOX_BACKLOG = Gauge("booking_outbox_backlog", "Committed outbox rows not yet handled")
OUTBOX_OLDEST_AGE = Gauge(
    "booking_outbox_oldest_age_seconds", "Age of the oldest committed outbox row not handled"
)
WORKER_HEARTBEAT_AGE = Gauge(
    "booking_worker_heartbeat_age_seconds",
    "Seconds since the freshest worker heartbeat (large or absent: no live worker)",
)
WORKERS_ALIVE = Gauge("booking_workers_alive", "Workers whose heartbeat is fresh")

# --------------------------------------------------------------------------- worker
JOBS = Counter(
    "booking_jobs_total", "arq jobs run by function and outcome", ["function", "outcome"]
)
JOB_DURATION = Histogram(
    "booking_job_duration_seconds",
    "Time an arq job ran",
    ["function"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0),
)
OUTBOX_HANDLED = Counter(
    "booking_outbox_handled_total", "Outbox rows whose handlers ran, by outcome", ["outcome"]
)
SMS = Counter(
    "booking_sms_total",
    "SMS send attempts by outcome (sent, retry, failed, skipped) and provider error code",
    ["status", "error_code"],
)
WEBHOOK_DELIVERIES = Counter(
    "booking_webhook_deliveries_total", "Partner webhook delivery attempts by outcome", ["outcome"]
)
HOLD_EXPIRIES = Counter("booking_hold_expiries_total", "Holds released by the sweeper")
PROMISES = Gauge("booking_promises", "Promises by status", ["status"])
