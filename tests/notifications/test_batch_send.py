"""The sends of one relay pass go to arq as one ``send_sms_batch`` job (issue 17): each
message is still claimed, sent once and recorded on its own row, a failure waits alone,
and each message's log line carries the request id that caused it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import structlog
from arq.connections import ArqRedis
from structlog.testing import LogCapture

from booking.outbox.service import relay_outbox
from booking.worker import OUTBOX_HANDLERS
from tests.notifications.fixtures import Pipeline, messages
from tests.support import World, at

COUNT = 5


def phone(i: int) -> str:
    return f"+39333100{i:04d}"


async def book_several(world: World) -> list[dict[str, Any]]:
    made = []
    for i in range(COUNT):
        client = world.client("front_desk", headers={"X-Request-Id": f"batch-req-{i}"})
        response = await client.post(
            f"/v1/businesses/{world.business_id}/bookings",
            json=world.booking_body(at(3 + i, 10), phone=phone(i), name=f"Cliente {i}"),
        )
        assert response.status_code == 201, response.text
        made.append(response.json())
    return made


async def sent_rows() -> list[dict[str, Any]]:
    return [m for m in await messages() if m["template"] == "booking_confirmed"]


async def test_one_relay_pass_is_one_job_and_every_message_is_sent_once(
    world: World, pipeline: Pipeline, redis: ArqRedis
) -> None:
    await book_several(world)
    result = await relay_outbox(redis, OUTBOX_HANDLERS)
    assert (result.handled, result.enqueued) == (COUNT, COUNT)
    [job] = await redis.queued_jobs()
    assert job.function == "send_sms_batch"
    assert len(job.args[0]) == COUNT

    capture = LogCapture()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, capture])
    try:
        await pipeline.run_worker()
    finally:
        structlog.reset_defaults()

    assert sorted(r.to for r in pipeline.fake.requests) == sorted(phone(i) for i in range(COUNT))
    rows = await sent_rows()
    assert [m["status"] for m in rows] == ["sent"] * COUNT
    assert [m["attempts"] for m in rows] == [1] * COUNT
    accepted = {m.sid for m in pipeline.fake.accepted}
    assert {m["provider_sid"] for m in rows} == accepted
    assert len(accepted) == COUNT
    # Each message's line carries its own booking's request id, in the batch job.
    lines = [e for e in capture.entries if e["event"] == "sms sent"]
    by_message = {e["message_id"]: e for e in lines}
    assert len(lines) == COUNT == len(by_message)
    for message in rows:
        line = by_message[str(message["id"])]
        assert line["job"] == "send_sms_batch"
        assert line["request_id"] == f"batch-req-{_index(message['to_phone'])}"


def _index(to_phone: str) -> int:
    return int(to_phone[-4:])


async def test_a_failure_inside_a_batch_waits_alone_and_is_sent_once_later(
    world: World, pipeline: Pipeline, redis: ArqRedis
) -> None:
    await book_several(world)
    pipeline.fake.script(503)  # whichever send reaches the fake first fails, once
    await relay_outbox(redis, OUTBOX_HANDLERS)

    await pipeline.run_worker()

    assert len(pipeline.fake.requests) == COUNT + 1
    assert len(pipeline.fake.accepted) == COUNT
    rows = await sent_rows()
    assert [m["status"] for m in rows] == ["sent"] * COUNT
    assert sorted(m["attempts"] for m in rows) == [1] * (COUNT - 1) + [2]
    retried = [r.to for r in pipeline.fake.requests]
    [twice] = {to for to in retried if retried.count(to) == 2}
    [again] = [m for m in rows if m["to_phone"] == twice]
    assert again["attempts"] == 2


async def test_the_same_batch_run_twice_sends_nothing_twice(
    world: World, pipeline: Pipeline, redis: ArqRedis
) -> None:
    await book_several(world)
    await relay_outbox(redis, OUTBOX_HANDLERS)
    [job] = await redis.queued_jobs()
    await pipeline.run_worker()
    # The same sends once more, under another job id (a duplicate batch): all sent already.
    await redis.enqueue_job("send_sms_batch", job.args[0], _job_id="a-second-batch")
    await pipeline.run_worker()

    assert len(pipeline.fake.requests) == COUNT
    assert [m["status"] for m in await sent_rows()] == ["sent"] * COUNT


async def test_a_batch_skips_a_customer_who_said_stop_and_sends_the_others(
    world: World, pipeline: Pipeline, redis: ArqRedis
) -> None:
    from booking import db

    made = await book_several(world)
    await relay_outbox(redis, OUTBOX_HANDLERS)
    async with db.connection() as conn:  # STOP arrives after the message was queued
        await conn.execute("UPDATE customer SET sms_consent = false WHERE phone = $1", phone(0))

    await pipeline.run_worker()

    assert sorted(r.to for r in pipeline.fake.requests) == sorted(
        phone(i) for i in range(1, COUNT)
    )
    [stopped] = await messages(UUID(made[0]["id"]))
    assert stopped["status"] == "skipped"
