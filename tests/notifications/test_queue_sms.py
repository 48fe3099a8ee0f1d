"""queue_sms: the function other features call inside their own transaction."""

from __future__ import annotations

from uuid import UUID

import pytest
from arq import create_pool
from arq.connections import RedisSettings

from booking import db
from booking.notifications.service import queue_sms, send_job
from booking.notifications.templates import TemplateError, register_template, render
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
