"""arq WorkerSettings: functions, cron jobs, startup/shutdown."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, ClassVar

from arq import Worker, cron
from arq.connections import RedisSettings
from arq.worker import func
from prometheus_client import start_http_server

from booking import db
from booking.bookings.jobs import expire_holds
from booking.calendars import jobs as calendar_jobs
from booking.calendars import writeback as calendar_writeback
from booking.guarantee import handlers as guarantee_handlers
from booking.guarantee import jobs as guarantee_jobs
from booking.idempotency.jobs import purge_idempotency_records
from booking.journey import feedback as journey_feedback
from booking.journey import jobs as journey_jobs
from booking.marketplace import inventory as marketplace_inventory
from booking.marketplace import notify as marketplace_notify
from booking.notifications import jobs as sms_jobs
from booking.notifications import service as sms_service
from booking.outbox import jobs as outbox_jobs
from booking.outbox.dispatch import Handler
from booking.privacy import jobs as customer_jobs
from booking.settings import Settings, get_settings
from booking.telemetry import liveness
from booking.telemetry.jobs import traced_crons, traced_functions
from booking.webhooks import jobs as webhook_jobs
from booking.webhooks import service as webhook_service

log = logging.getLogger("booking.worker")

# What happens to every committed outbox event, in this order: the customer's SMS and
# reminders, the guarantee (offers, waitlist, promises), partner webhooks, the staff
# member's own CalDAV calendar (write-back). The one list:
# the relay loops (outbox/jobs.py) run these in this process, in the transaction that
# claims the rows; only the follow-up jobs they return (provider calls) go through arq.
OUTBOX_HANDLERS: tuple[Handler, ...] = (
    sms_service.on_booking_event,
    guarantee_handlers.on_event,
    journey_feedback.on_event,  # feedback after the visit; low scores -> callback promise
    webhook_service.deliveries_for_event,
    calendar_writeback.on_booking_event,
    marketplace_notify.on_booking_event,  # feeds changed; booking notifications
    marketplace_inventory.on_schedule_changed,  # feeds changed; availability replaced
)


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx.get("settings") or get_settings()
    ctx["settings"] = settings
    ctx.setdefault("outbox_handlers", OUTBOX_HANDLERS)
    # A pool already open in this process (tests run the worker in-process) is not ours.
    ctx["owns_db_pool"] = db.engine().pool is None
    if ctx["owns_db_pool"]:
        await db.start_pool(settings.database_url, 1, max(2, settings.db_pool_max // 2))
    await sms_jobs.open_sender(ctx)
    await outbox_jobs.start_relay_loop(ctx)
    await liveness.start_heartbeat(ctx)
    if settings.worker_metrics_port and not ctx.get("metrics_server_started"):
        # The worker's counters (jobs, SMS, outbox) for Prometheus, on loopback by default.
        start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
        ctx["metrics_server_started"] = True


async def shutdown(ctx: dict[str, Any]) -> None:
    await liveness.stop_heartbeat(ctx)
    await outbox_jobs.stop_relay_loop(ctx)
    await sms_jobs.close_sender(ctx)
    if ctx.get("owns_db_pool", True):
        await db.close_pool()


def redis_settings(settings: Settings | None = None) -> RedisSettings:
    return RedisSettings.from_dsn((settings or get_settings()).redis_url)


# Every arq job, by name. Outbox rows are handled by the relay loops, not by jobs;
# handle_outbox_event only runs rows an earlier version queued one job per row.
FUNCTIONS: list[Any] = [expire_holds]
FUNCTIONS += [outbox_jobs.handle_outbox_event, sms_jobs.SEND_SMS, sms_jobs.SEND_SMS_BATCH]
CRON_JOBS: list[Any] = [
    cron(expire_holds, second={0, 30}, run_at_startup=True, unique=True),
    # The relay's safety net (the poll loop started in startup() is the fast path);
    # not every second, or a burst worker would never find its queue empty.
    cron(
        outbox_jobs.relay_outbox_job, second=set(range(0, 60, 5)), run_at_startup=True, unique=True
    ),
    cron(sms_jobs.send_due_reminders, second={10, 40}, run_at_startup=True, unique=True),
    cron(sms_jobs.requeue_messages, second={5, 20, 35, 50}, run_at_startup=True, unique=True),
]
# Partner webhooks: first attempts come from the outbox; retries are rows with a due time.
FUNCTIONS += [webhook_jobs.deliver_webhook]
CRON_JOBS += [
    cron(webhook_jobs.retry_due_webhooks, second={20, 50}, run_at_startup=True, unique=True),
    cron(purge_idempotency_records, minute={17}, second={0}, unique=True),
]
# The guarantee: unanswered offers expire, and the promise watchdog (see docs/guarantee.md).
CRON_JOBS += [
    cron(guarantee_jobs.expire_offers, second={0, 15, 30, 45}, run_at_startup=True, unique=True),
    cron(guarantee_jobs.watch_promises, second={5, 35}, run_at_startup=True, unique=True),
]
# Customers' data: each business's retention setting, applied once a day (GDPR).
CRON_JOBS += [
    cron(customer_jobs.apply_retention, hour={3}, minute={41}, second={0}, unique=True),
]
# The journey: feedback questions fall due (rows with an ask_at, booking/journey/feedback.py).
CRON_JOBS += [
    cron(journey_jobs.ask_for_feedback, second={25, 55}, run_at_startup=True, unique=True),
    # the metrics' change notes of businesses nobody reads metrics for (journey/summary.py)
    cron(journey_jobs.fold_journey_notes, minute={13, 43}, second={0}, unique=True),
]
# Staff calendars (docs/calendars.md): outside calendars synced when due; write-back jobs
# come from the outbox.
FUNCTIONS += [calendar_jobs.calendar_write_back]
FUNCTIONS += [marketplace_notify.marketplace_notify]
FUNCTIONS += [
    func(
        marketplace_inventory.marketplace_availability,
        name=marketplace_inventory.AVAILABILITY_JOB,
        max_tries=marketplace_inventory.MAX_TRIES,
    )
]
CRON_JOBS += [
    cron(calendar_jobs.sync_due_calendars, second={25}, run_at_startup=True, unique=True),
]


class WorkerSettings:
    """For ``arq booking.worker.WorkerSettings``; ``booking worker`` uses build_worker()."""

    functions: ClassVar[list[Any]] = FUNCTIONS
    cron_jobs: ClassVar[list[Any]] = CRON_JOBS
    on_startup = startup
    on_shutdown = shutdown
    max_jobs = 20
    job_timeout = 60
    keep_result = 60
    # arq only picks up jobs when it polls; 0.5 s (its default) is up to half a second
    # between the relay's commit and the Twilio call (bench/notifications.py). A poll is
    # one cheap Redis ZRANGEBYSCORE.
    poll_delay = 0.02


def build_worker(settings: Settings | None = None, **overrides: Any) -> Worker:
    """A Worker wired to ``settings`` (tests pass burst=True, poll_delay=0)."""
    config = settings or get_settings()
    options: dict[str, Any] = {
        "functions": FUNCTIONS,
        # arq keeps each cron job's next run on the CronJob object; fresh copies
        # let several workers in one process (tests) each run their startup crons.
        "cron_jobs": [dataclasses.replace(job, next_run=None) for job in CRON_JOBS],
        "on_startup": startup,
        "on_shutdown": shutdown,
        "max_jobs": WorkerSettings.max_jobs,
        "job_timeout": WorkerSettings.job_timeout,
        "keep_result": WorkerSettings.keep_result,
        "poll_delay": WorkerSettings.poll_delay,
        "redis_settings": redis_settings(config),
        "ctx": {"settings": config},
        "handle_signals": True,
    }
    options.update(overrides)
    # Every job (overrides too: the fault drills swap send_sms) logs with the request id
    # that caused it and is counted by function and outcome.
    options["functions"] = traced_functions(options["functions"])
    options["cron_jobs"] = traced_crons(options["cron_jobs"])
    return Worker(**options)
