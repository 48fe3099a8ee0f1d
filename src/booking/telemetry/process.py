"""The worker process's life: run, stop within a bound, say why; and keep a worker running.

* :func:`run_worker`: arq's worker until it stops or fails; shutdown (closing pools) gets
  ``SHUTDOWN_TIMEOUT`` seconds - a Redis at maxmemory or gone can leave ``close()``
  waiting forever - then the process exits non-zero with one clear log line. A watchdog
  thread ends the process even if the event loop itself is stuck.
* :func:`supervise`: what ``booking up`` does for its worker (compose uses
  ``restart: unless-stopped``): a worker that exits is started again after a short,
  growing pause, and the API keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("booking.worker")

SHUTDOWN_TIMEOUT = 15.0  # seconds for the worker to close its pools once it stops
_HARD_EXIT_MARGIN = 10.0
RESTART_PAUSE = (1.0, 30.0)  # first and longest pause between restarts


def _watchdog(seconds: float) -> threading.Timer:
    def hard_exit() -> None:
        log.error("worker did not exit %.0f s after stopping; killing itself", seconds)
        logging.shutdown()
        os._exit(3)

    timer = threading.Timer(seconds, hard_exit)
    timer.daemon = True
    timer.start()
    return timer


def run_worker(worker: Any, shutdown_timeout: float = SHUTDOWN_TIMEOUT) -> int:
    """Run an arq ``Worker`` on its own loop; the process's exit code."""
    code = 0
    reason = "stopped"
    loop: asyncio.AbstractEventLoop = worker.loop
    worker.main_task = loop.create_task(worker.main())  # what arq's signal handler cancels
    try:
        loop.run_until_complete(worker.main_task)
    except (KeyboardInterrupt, asyncio.CancelledError):
        reason = "interrupted"
    except Exception as exc:  # Redis gone or full, PostgreSQL away at start-up, a bug
        code, reason = 1, f"failed: {exc!r}"
        log.exception("worker failed")
    watchdog = _watchdog(shutdown_timeout + _HARD_EXIT_MARGIN)
    try:
        loop.run_until_complete(asyncio.wait_for(worker.close(), shutdown_timeout))
    except TimeoutError:
        code = code or 2
        reason += f"; shutdown did not finish within {shutdown_timeout:.0f} s"
    except Exception as exc:
        code = code or 2
        reason += f"; shutdown failed: {exc!r}"
    finally:
        watchdog.cancel()
    if code:
        log.error("worker exiting with status %d: %s", code, reason)
    else:
        log.info("worker exiting: %s", reason)
    return code


def supervise(
    command: Sequence[str],
    env: dict[str, str],
    keep_going: Callable[[], bool],
    on_start: Callable[[subprocess.Popen[bytes]], None] = lambda _: None,
    **popen: Any,
) -> None:
    """Start ``command``; while ``keep_going()``, start it again whenever it exits
    (``popen``: more arguments for ``subprocess.Popen``, e.g. ``stdout``)."""
    pause = RESTART_PAUSE[0]
    while keep_going():
        started = time.monotonic()
        child = subprocess.Popen(list(command), env=env, **popen)
        on_start(child)
        code = child.wait()
        if time.monotonic() - started > 60:
            pause = RESTART_PAUSE[0]  # it ran a good while: not a crash loop
        time.sleep(pause)  # also lets a Ctrl-C that stopped it reach keep_going first
        if not keep_going():
            return
        log.error("worker exited with status %s; started again after %.0f s", code, pause)
        pause = min(RESTART_PAUSE[1], pause * 2)
