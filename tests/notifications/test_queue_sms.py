"""queue_sms: the function other features call inside their own transaction."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import pytest
from arq import create_pool
from arq.connections import RedisSettings

from booking import db
from booking.notifications.service import message_id, queue_sms, send_job
from booking.notifications.templates import TemplateError, register_template, render
from booking.outbox.dispatch import FollowUpJob, run_before_commit, transaction_memo
from booking.outbox.service import enqueue_follow_ups
from tests.notifications.fixtures import Pipeline, messages
from tests.notifications.test_pipeline import book
from tests.support import World

register_template(
    "test_offer",
    {"en": "{business}: {name}, a slot at {slot} is free. {link}", "it": "{name}: {slot} libero"},
)


async def test_queue_sms_to_a_bookings_customer_with_an_extra_template(
    world: World, pipeline: Pipeline
) -> None:
    booking = await book(world)
    await pipeline.run_worker()
    pipeline.fake.reset()

    async with db.transaction() as conn:
        job = await queue_sms(
            conn,
            booking_id=UUID(booking["id"]),
            template="test_offer",
            context={"slot": "10:30"},
            dedupe_key="offer:1",
            settings=pipeline.settings,
        )
        again = await queue_sms(
            conn,
            booking_id=UUID(booking["id"]),
            template="test_offer",
            context={"slot": "10:30"},
            dedupe_key="offer:1",
            settings=pipeline.settings,
        )
    assert job is not None
    assert job == again
    assert job.function == "send_sms"
    assert job.job_id.startswith("sms:")
    # Not enqueueing is fine too: the requeue cron finds pending messages.
    async with db.connection() as conn:
        await conn.execute("UPDATE message SET next_attempt_at = now() - interval '1 minute'")
    await pipeline.run_worker()

    [request] = pipeline.fake.requests
    assert request.body == "Anna: 10:30 libero"  # the customer's locale
    offers = [m for m in await messages(UUID(booking["id"])) if m["template"] == "test_offer"]
    assert len(offers) == 1


async def test_queue_sms_to_any_number(world: World, pipeline: Pipeline) -> None:
    async with db.transaction() as conn:
        job = await queue_sms(
            conn,
            to="+393339998877",
            business_id=world.business_id,
            template="test_offer",
            context={"business": "Salone", "name": "Giulia", "slot": "9:00", "link": "-"},
            dedupe_key="on-duty:1",
        )
    assert job is not None
    redis = await create_pool(RedisSettings.from_dsn(pipeline.settings.redis_url))
    await enqueue_follow_ups(redis, [job])
    await redis.aclose()
    await pipeline.run_worker()

    [request] = pipeline.fake.requests
    assert request.to == "+393339998877"
    assert request.body == "Salone: Giulia, a slot at 9:00 is free. -"


async def test_batched_messages_are_written_together_before_commit_under_ids_known_at_once(
    world: World, pipeline: Pipeline
) -> None:
    """In a relay pass the handlers' messages wait for run_before_commit and go in as one
    statement; each job already names its row, because the id follows from business and
    key: a rerun of the pass (Redis refused its jobs) returns the same job, and a key
    whose message was sent meanwhile gets no second row and no second SMS."""
    first = UUID((await book(world, days=3))["id"])
    second = UUID((await book(world, days=4))["id"])
    await pipeline.run_worker()
    pipeline.fake.reset()

    async def queue(conn: asyncpg.Connection, booking_id: UUID, key: str) -> FollowUpJob | None:
        return await queue_sms(
            conn,
            booking_id=booking_id,
            template="test_offer",
            context={"slot": "10:30"},
            dedupe_key=key,
            settings=pipeline.settings,
            batched=True,
        )

    async with db.transaction() as conn:
        with transaction_memo():
            jobs = [await queue(conn, first, "offer:a"), await queue(conn, second, "offer:b")]
            written = await conn.fetchval(
                "SELECT count(*) FROM message WHERE template = 'test_offer'"
            )
            await run_before_commit(conn)
    assert written == 0  # nothing until just before commit
    ids = [message_id(world.business_id, key) for key in ("offer:a", "offer:b")]
    assert jobs == [send_job(i) for i in ids]
    offers = [m for m in await messages() if m["template"] == "test_offer"]
    assert sorted(m["id"] for m in offers) == sorted(ids)

    redis = await create_pool(RedisSettings.from_dsn(pipeline.settings.redis_url))
    await enqueue_follow_ups(redis, [job for job in jobs if job is not None])
    await pipeline.run_worker()
    assert [r.body for r in pipeline.fake.requests] == ["Anna: 10:30 libero"] * 2

    async with db.transaction() as conn:
        with transaction_memo():  # the same keys again
            again = [await queue(conn, first, "offer:a"), await queue(conn, second, "offer:b")]
            await run_before_commit(conn)
    assert again == jobs
    await enqueue_follow_ups(redis, [job for job in again if job is not None])
    await redis.aclose()
    await pipeline.run_worker()
    assert len(pipeline.fake.requests) == 2  # sent once each
    assert len([m for m in await messages() if m["template"] == "test_offer"]) == 2


async def test_rolled_back_queue_sms_leaves_nothing(world: World, pipeline: Pipeline) -> None:
    class Abort(Exception):
        pass

    async def queue_then_fail() -> None:
        async with db.transaction() as conn:
            await queue_sms(
                conn,
                to="+393339998877",
                business_id=world.business_id,
                template="reply_help",
                context={},
                dedupe_key="x",
            )
            raise Abort

    with pytest.raises(Abort):
        await queue_then_fail()
    assert await messages() == []


def test_templates_fail_loudly_on_missing_values() -> None:
    with pytest.raises(TemplateError):
        render("test_offer", "en", {"name": "x"})
    with pytest.raises(TemplateError):
        render("no-such-template", "en", {})
    with pytest.raises(TemplateError):
        register_template("broken", {"it": "solo italiano"})
    assert send_job(UUID(int=1)).job_id == f"sms:{UUID(int=1)}"
