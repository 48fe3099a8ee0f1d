"""The production worker with drill-sized clocks: `python -m tests.faults.drill_worker`.

Same functions, cron jobs, start-up, relay loop and Twilio sender as `booking
worker` (build_worker, settings from the environment); only three durations
shrink so a drill recovers in seconds instead of minutes:

* ``--job-timeout``: arq's job timeout, so a killed worker's in-progress marks
  (timeout + 10 s) lapse sooner;
* ``--lease``: the send claim (production 90 s), kept longer than the job
  timeout as in production, so a live attempt is still never overtaken;
* ``--backoff-base``: the first retry delay (production 5 s), doubled per attempt;
* ``--redeliver-after``: how long a relayed outbox row waits for its job before
  it is relayed again (production 3 min).

The send jobs are the production adapters (notifications/jobs.py), which read the
lease and the backoff base from the worker's ctx; everything below them is
notifications/sending.py unchanged.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from booking.settings import get_settings
from booking.telemetry.logs import configure_logging
from booking.telemetry.process import run_worker
from booking.worker import build_worker


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.drill_worker")
    parser.add_argument("--job-timeout", type=float, default=3.0)
    parser.add_argument("--lease", type=float, default=4.0)
    parser.add_argument("--backoff-base", type=float, default=0.3)
    parser.add_argument(
        "--redeliver-after",
        type=float,
        default=3.0,
        help="seconds before a relayed outbox row whose job never ran is relayed again",
    )
    args = parser.parse_args(argv)
    if args.lease <= args.job_timeout:
        parser.error("--lease must outlast --job-timeout, as in production")
    settings = get_settings()
    configure_logging(settings.log_level, "json", "worker")
    worker = build_worker(
        settings,
        job_timeout=args.job_timeout,
        ctx={
            "settings": settings,
            "sms_backoff_base": args.backoff_base,
            "sms_lease_seconds": args.lease,
            "outbox_redeliver_after": timedelta(seconds=args.redeliver_after),
        },
    )
    sys.exit(run_worker(worker))


if __name__ == "__main__":
    main()
