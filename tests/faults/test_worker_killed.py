"""Fault drill: the worker SIGKILLed in the middle of a batch of 200 confirmations.

200 bookings are made through the API first (200 outbox rows, one confirmation
SMS each), then a worker process drains them and is killed with SIGKILL part-way;
a new worker process finishes the batch. The fake Twilio process counts.

What the design guarantees (notifications/service.py, docs/notifications.md):
a message is claimed (``sending``, with a lease) before the Twilio call and
recorded ``sent`` after it. A kill can only hurt a message inside that window:
if Twilio had not accepted it, the next worker sends it once after the lease;
if Twilio had accepted it, the next worker sends it again (at-least-once; Twilio
has no idempotency key). So:

* killed while every in-flight call is stalled at Twilio and not yet accepted
  (the fake's Stall outcome): every confirmation is sent **exactly once**;
* killed while calls are in flight that Twilio goes on to accept (the first 60
  answered at once, the rest after 0.5 s, whether or not the caller is still
  there): **none lost**, and duplicates are **at most the messages in flight**
  (``sending``) at the kill.

The second drill used to let Twilio answer everything at once and kill after 60
were sent; since a relay pass's sends go out together (one ``send_sms_batch``
job), all 200 were sent before the kill landed, so the slow rest keeps the kill
inside the batch.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.faults.sms_drill import Rig, SmsStack, Tenant, phone, sms_rig, wait_for

BATCH = 200
ACCEPTED_BEFORE_STALL = 80
# Longer than the drill: these requests are never accepted while the drill counts.
STALL = {"kind": "stall", "seconds": 600}
SLOW_REST = {"kind": "stall", "seconds": 0.5}  # answered, but late


async def _book_batch(rig: Rig, tenant: Tenant) -> dict[str, str]:
    """The batch, 16 concurrent clients; phone -> reference code."""
    semaphore = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=rig.api, timeout=30) as http:

        async def one(index: int) -> dict[str, Any]:
            async with semaphore:
                response = await tenant.book(http, index)
            assert response.status_code == 201, response.text
            body: dict[str, Any] = response.json()
            return body

        made = await asyncio.gather(*(one(i) for i in range(BATCH)))
    return {phone(i): booking["reference_code"] for i, booking in enumerate(made)}


async def _finish_after_restart(rig: Rig) -> None:
    """A new worker; wait until all 200 are sent and nothing more reaches the fake."""
    rig.start_worker()

    async def all_sent() -> bool:
        counts = await rig.message_counts()
        return counts.get("sent", 0) == BATCH

    try:
        await wait_for("every confirmation sent after the restart", all_sent, within=60)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {await rig.message_counts()}\n{rig.worker_log()}") from exc
    # A duplicate from a rerun would reach the fake after the row says sent: give it time.
    await asyncio.sleep(1.5)


async def _assert_each_booking_texted(
    rig: Rig, references: dict[str, str], messages: list[dict[str, Any]]
) -> None:
    assert {m["to"] for m in messages} == set(references), "a confirmation was lost"
    for message in messages:
        assert references[message["to"]] in message["body"], message
    rows = await rig.fetch("SELECT status, to_phone, provider_sid FROM message")
    assert len(rows) == BATCH
    assert {row["status"] for row in rows} == {"sent"}
    # The sid each row recorded is one the fake handed out for that same number.
    by_sid = {m["sid"]: m["to"] for m in messages}
    assert all(by_sid.get(row["provider_sid"]) == row["to_phone"] for row in rows)


async def test_worker_sigkilled_while_sends_are_in_flight_at_twilio_sends_each_exactly_once(
    sms_stack: SmsStack,
) -> None:
    async with sms_rig(sms_stack) as rig:
        tenant = await rig.tenant()
        await rig.fake.script([201] * ACCEPTED_BEFORE_STALL, default=STALL)
        references = await _book_batch(rig, tenant)
        rig.start_worker()

        async def mid_batch() -> bool:
            # The first 80 are accepted *and recorded*, and more calls wait at Twilio.
            counts = await rig.message_counts()
            return (
                counts.get("sent", 0) == ACCEPTED_BEFORE_STALL
                and len(await rig.fake.requests()) > ACCEPTED_BEFORE_STALL + 5
            )

        await wait_for("the worker to be mid-batch", mid_batch, within=30)
        rig.kill_worker()
        at_kill = await rig.message_counts()
        stalled = len(await rig.fake.requests()) - ACCEPTED_BEFORE_STALL
        claimed = at_kill.get("sending", 0)
        assert at_kill.get("sent", 0) == ACCEPTED_BEFORE_STALL
        # Every call seen stalled at Twilio is a claimed row; a row claimed just before the
        # kill may not have reached the fake yet (it was never accepted either way).
        assert claimed >= stalled > 0, (at_kill, stalled)
        assert len(await rig.fake.messages()) == ACCEPTED_BEFORE_STALL

        await rig.fake.script([], default=201)
        await _finish_after_restart(rig)
        messages = await rig.fake.messages()

        assert len(messages) == BATCH, f"{len(messages) - BATCH} duplicates"
        await _assert_each_booking_texted(rig, references, messages)
        # The claimed ones (stalled at Twilio or not yet there) were tried again, by the
        # new worker, after their lease; nothing else needed a second attempt.
        rows = await rig.fetch("SELECT attempts FROM message WHERE attempts > 1")
        assert len(rows) == claimed


async def test_worker_sigkilled_at_any_moment_loses_nothing_and_duplicates_only_in_flight_sends(
    sms_stack: SmsStack,
) -> None:
    async with sms_rig(sms_stack) as rig:
        tenant = await rig.tenant()
        await rig.fake.script([201] * 60, default=SLOW_REST)
        references = await _book_batch(rig, tenant)
        rig.start_worker()

        async def mid_batch() -> bool:
            return (await rig.message_counts()).get("sent", 0) >= 60

        await wait_for("the worker to be mid-batch", mid_batch, within=30, every=0.01)
        rig.kill_worker()
        at_kill = await rig.message_counts()
        in_flight = at_kill.get("sending", 0)
        assert at_kill.get("sent", 0) < BATCH, at_kill

        await _finish_after_restart(rig)
        messages = await rig.fake.messages()

        duplicates = len(messages) - BATCH
        print(f"kill at {at_kill}: {in_flight} in flight, {duplicates} duplicate(s)")
        assert 0 <= duplicates <= in_flight, (duplicates, in_flight, at_kill)
        await _assert_each_booking_texted(rig, references, messages)
        counts = {m["to"]: 0 for m in messages}
        for message in messages:
            counts[message["to"]] += 1
        assert sum(n - 1 for n in counts.values()) == duplicates
