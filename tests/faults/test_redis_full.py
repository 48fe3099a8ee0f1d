"""Fault drill: Redis full (maxmemory 1mb) for 30 s while customers keep booking.

Seen before (issue 17): the worker either crashed with OutOfMemoryError - and `booking
up` stopped the API with it - or hung in Pool.close() for minutes and sent nothing after
Redis recovered. Now: the API keeps answering 201 (bookings and outbox rows are in
PostgreSQL), the worker that fails exits within its bounded shutdown and is started again
by the same supervisor `booking up` uses (booking.telemetry.process.supervise), and once
the space is freed every booking's confirmation reaches the fake Twilio exactly once,
with no manual restart.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import httpx

from booking.telemetry.process import supervise
from tests.faults.sms_drill import Rig, SmsStack, phone, sms_rig, wait_for

FULL_SECONDS = 30.0
BOOKINGS_PER_SECOND = 5.0


def _redis_cli(rig: Rig, *args: str) -> str:
    port = str(rig.stack.stack.redis_port)
    done = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", port, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    return done.stdout.strip()


async def test_redis_full_30s_every_sms_sent_exactly_once_without_manual_restart(
    sms_stack: SmsStack,
) -> None:
    async with sms_rig(sms_stack) as rig:
        tenant = await rig.tenant()
        stopping = threading.Event()
        log_path = rig.logs / "worker-supervised.log"
        with log_path.open("w") as log:
            supervisor = threading.Thread(
                target=supervise,
                args=(
                    [sys.executable, "-m", "tests.faults.drill_worker"],
                    rig.env,
                    lambda: not stopping.is_set(),
                    rig._children.append,
                ),
                kwargs={"stdout": log, "stderr": subprocess.STDOUT},
                daemon=True,
            )
            supervisor.start()
            statuses: list[int] = []
            try:
                async with httpx.AsyncClient(base_url=rig.api, timeout=10) as http:

                    async def book_for(seconds: float) -> None:
                        end = time.monotonic() + seconds
                        while time.monotonic() < end:
                            began = time.monotonic()
                            response = await tenant.book(http, len(statuses))
                            statuses.append(response.status_code)
                            pause = 1 / BOOKINGS_PER_SECOND - (time.monotonic() - began)
                            await asyncio.sleep(max(0.0, pause))

                    await book_for(3.0)
                    assert _redis_cli(rig, "CONFIG", "SET", "maxmemory", "1mb") == "OK"
                    try:
                        await book_for(FULL_SECONDS)
                    finally:
                        assert _redis_cli(rig, "CONFIG", "SET", "maxmemory", "0") == "OK"
                    await book_for(2.0)

                assert statuses
                assert all(status == 201 for status in statuses), statuses

                async def all_sent() -> bool:
                    return (await rig.message_counts()).get("sent", 0) == len(statuses)

                try:
                    await wait_for("every confirmation sent", all_sent, within=120)
                except AssertionError as exc:
                    counts = await rig.message_counts()
                    raise AssertionError(
                        f"{exc}: {counts} of {len(statuses)}\n{log_path.read_text()[-4000:]}"
                    ) from exc
                await asyncio.sleep(1.0)
                sent_to = sorted(m["to"] for m in await rig.fake.messages())
                assert sent_to == sorted(phone(i) for i in range(len(statuses)))
            finally:
                stopping.set()
    worker_log = log_path.read_text()
    print(f"{len(statuses)} bookings; worker restarts: {worker_log.count('exiting with status')}")
