"""Every arq job the worker runs, traced: its log lines carry the request id that caused
it (the ``request_id`` keyword the relay adds to follow-up jobs), and it is counted by
function and outcome. Applied once, in booking.worker.build_worker, to the one list."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from arq import Retry
from arq.cron import CronJob
from arq.worker import Function, func

from booking.telemetry import metrics

log = structlog.get_logger("booking.jobs")


def _wrap(name: str, coroutine: Callable[..., Any]) -> Callable[..., Any]:
    async def run(ctx: dict[str, Any], *args: Any, request_id: str | None = None, **kw: Any) -> Any:
        context: dict[str, Any] = {"job": name, "job_id": ctx.get("job_id")}
        if request_id:
            context["request_id"] = request_id
        began = time.perf_counter()
        outcome = "error"
        with structlog.contextvars.bound_contextvars(**context):
            try:
                result = await coroutine(ctx, *args, **kw)
                outcome = "ok"
                return result
            except Retry:
                outcome = "retry"
                raise
            finally:
                metrics.JOBS.labels(name, outcome).inc()
                metrics.JOB_DURATION.labels(name).observe(time.perf_counter() - began)

    run.__qualname__ = run.__name__ = name
    return run


def traced_functions(functions: Sequence[Any]) -> list[Function]:
    traced: list[Function] = []
    for item in functions:
        function = item if isinstance(item, Function) else func(item)
        if getattr(function.coroutine, "__booking_traced__", False):
            traced.append(function)
            continue
        wrapped = _wrap(function.name, function.coroutine)
        wrapped.__booking_traced__ = True  # type: ignore[attr-defined]
        traced.append(dataclasses.replace(function, coroutine=wrapped))
    return traced


def traced_crons(jobs: Sequence[CronJob]) -> list[CronJob]:
    return [
        job
        if getattr(job.coroutine, "__booking_traced__", False)
        else dataclasses.replace(job, coroutine=_mark(_wrap(job.name, job.coroutine)))
        for job in jobs
    ]


def _mark(coroutine: Callable[..., Any]) -> Callable[..., Any]:
    coroutine.__booking_traced__ = True  # type: ignore[attr-defined]
    return coroutine
