"""arq WorkerSettings: functions, cron jobs, startup/shutdown."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from arq import Worker, cron
from arq.connections import RedisSettings

from booking import db
from booking.bookings.jobs import expire_holds
from booking.settings import Settings, get_settings

log = logging.getLogger("booking.worker")


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx.get("settings") or get_settings()
    ctx["settings"] = settings
    await db.start_pool(settings.database_url, 1, max(2, settings.db_pool_max // 2))


async def shutdown(ctx: dict[str, Any]) -> None:
    await db.close_pool()


def redis_settings(settings: Settings | None = None) -> RedisSettings:
    return RedisSettings.from_dsn((settings or get_settings()).redis_url)


FUNCTIONS: list[Any] = [expire_holds]
CRON_JOBS: list[Any] = [
    cron(expire_holds, second={0, 30}, run_at_startup=True, unique=True),
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


def build_worker(settings: Settings | None = None, **overrides: Any) -> Worker:
    """A Worker wired to ``settings`` (tests pass burst=True, poll_delay=0)."""
    config = settings or get_settings()
    options: dict[str, Any] = {
        "functions": FUNCTIONS,
        "cron_jobs": CRON_JOBS,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "max_jobs": WorkerSettings.max_jobs,
        "job_timeout": WorkerSettings.job_timeout,
        "keep_result": WorkerSettings.keep_result,
        "redis_settings": redis_settings(config),
        "ctx": {"settings": config},
        "handle_signals": True,
    }
    options.update(overrides)
    return Worker(**options)
