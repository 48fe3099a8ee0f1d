"""Booking events to SMS through the real pipeline: outbox, relay, arq worker, twilio client."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from booking import db
from booking.access.principal import Principal
from booking.bookings.checks import CustomerInput
from booking.bookings.placing import create_booking
from booking.outbox.service import handle_event
from booking.worker import OUTBOX_HANDLERS
from tests.fakes.fake_twilio import ServerError
from tests.notifications.fixtures import FROM_NUMBER, Pipeline, messages
from tests.support import World, at

PHONE = "+393331234567"


async def book(world: World, days: int = 3, hour: int = 10, **extra: Any) -> dict[str, Any]:
    client = world.client("front_desk")
    response = await client.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(days, hour), phone=PHONE, **extra),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_booking_created_sends_exactly_one_confirmation_sms(
    world: World, pipeline: Pipeline
) -> None:
    booking = await book(world)

    await pipeline.run_worker()

    [request] = pipeline.fake.requests
    assert request.authorized
    assert request.to == PHONE
    assert request.from_ == FROM_NUMBER
    assert request.status_callback == pipeline.api + "/v1/twilio/status"
    body = request.body or ""
    assert body.startswith("Salone Test: prenotazione confermata, Cut ")
    assert booking["reference_code"] in body
    link = body.rsplit(" ", 1)[-1]
    assert link.startswith(pipeline.api + "/b/bt.")
    [message] = await messages(UUID(booking["id"]))
    assert message["status"] == "sent"
    assert message["provider_sid"] == pipeline.fake.accepted[0].sid
    assert message["template"] == "booking_confirmed"
    assert message["locale"] == "it"
    assert message["attempts"] == 1
    # The link's token grants this booking to whoever holds it.
    token = link.rsplit("/", 1)[-1]
    customer = world.client(None, headers={"Authorization": f"Bearer {token}"})
    response = await customer.get(f"/v1/bookings/{booking['id']}")
    assert response.status_code == 200
    assert response.json()["id"] == booking["id"]


async def test_english_customer_gets_english_text(world: World, pipeline: Pipeline) -> None:
    client = world.client("front_desk")
    body = world.booking_body(at(3, 11), phone="+447911123456")
    body["customer"]["locale"] = "en"
    response = await client.post(f"/v1/businesses/{world.business_id}/bookings", json=body)
    assert response.status_code == 201, response.text

    await pipeline.run_worker()

    [request] = pipeline.fake.requests
    assert (request.body or "").startswith("Salone Test: your booking is confirmed, Cut on ")
    assert request.to == "+447911123456"


async def test_running_every_job_twice_still_sends_one_sms(
    world: World, pipeline: Pipeline
) -> None:
    booking = await book(world)
    await pipeline.run_worker()
    assert len(pipeline.fake.accepted) == 1

    # Everything again: the outbox row relayed anew, its handler and sends rerun,
    # arq's memory of the first run gone.
    async with db.connection() as conn:
        await conn.execute("UPDATE outbox SET relayed_at = NULL")
        outbox_ids = [row["id"] for row in await conn.fetch("SELECT id FROM outbox")]
    await pipeline.run_worker(redis_url=None)
    for outbox_id in outbox_ids:
        await handle_event(outbox_id, OUTBOX_HANDLERS)
    from arq import create_pool
    from arq.connections import RedisSettings

    redis = await create_pool(RedisSettings.from_dsn(pipeline.settings.redis_url))
    await redis.flushdb()
    [message] = await messages(UUID(booking["id"]))
    await redis.enqueue_job("send_sms", str(message["id"]), _job_id="a-different-id")
    await redis.aclose()
    await pipeline.run_worker()

    assert len(pipeline.fake.requests) == 1
    assert len(await messages(UUID(booking["id"]))) == 1


async def test_rolled_back_transaction_sends_nothing(world: World, pipeline: Pipeline) -> None:
    admin = Principal(kind="admin", id="test")

    class Abort(Exception):
        pass

    async def book_then_fail() -> None:
        async with db.transaction():
            await create_booking(
                admin,
                world.business_id,
                world.cut,
                at(3, 12),
                CustomerInput("Rolled Back", PHONE, "it"),
            )
            raise Abort

    with pytest.raises(Abort):
        await book_then_fail()

    await pipeline.run_worker()

    assert pipeline.fake.requests == []
    assert await messages() == []
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0


async def test_pending_booking_asks_for_a_yes(world: World, pipeline: Pipeline) -> None:
    await book(world, service=world.consult)

    await pipeline.run_worker()

    [request] = pipeline.fake.requests
    assert "Rispondi SI per confermarla" in (request.body or "")


async def test_opted_out_customer_gets_no_sms_and_it_is_recorded(
    world: World, pipeline: Pipeline
) -> None:
    first = await book(world, days=3)
    await pipeline.run_worker()
    async with db.connection() as conn:
        await conn.execute("UPDATE customer SET sms_consent = false")
    second = await book(world, days=4)

    await pipeline.run_worker()

    assert len(pipeline.fake.requests) == 1  # only the first booking's
    [skipped] = await messages(UUID(second["id"]))
    assert skipped["status"] == "skipped"
    assert "opted out" in skipped["error_message"]
    assert (await messages(UUID(first["id"])))[0]["status"] == "sent"


async def test_retryable_errors_back_off_then_send_once(world: World, pipeline: Pipeline) -> None:
    pipeline.fake.script({"kind": "rate_limit", "retry_after": 0.2}, 503)
    booking = await book(world)

    await pipeline.run_worker()

    assert [r.authorized for r in pipeline.fake.requests] == [True, True, True]
    assert len(pipeline.fake.accepted) == 1
    [message] = await messages(UUID(booking["id"]))
    assert message["status"] == "sent"
    assert message["attempts"] == 3
    assert message["error_code"] is None


@pytest.mark.parametrize("code", [21211, 21610])
async def test_permanent_error_is_recorded_and_not_retried(
    world: World, pipeline: Pipeline, code: int
) -> None:
    pipeline.fake.script((400, code))
    booking = await book(world)

    await pipeline.run_worker()

    assert len(pipeline.fake.requests) == 1
    [message] = await messages(UUID(booking["id"]))
    assert message["status"] == "failed"
    assert message["error_code"] == code
    assert message["attempts"] == 1
    async with db.connection() as conn:
        consent = await conn.fetchval("SELECT sms_consent FROM customer WHERE phone = $1", PHONE)
    assert consent is (code != 21610)  # Twilio's "opted out" is remembered on the customer


async def test_retries_stop_after_the_attempt_limit(world: World, pipeline: Pipeline) -> None:
    from booking.notifications.sending import MAX_ATTEMPTS

    pipeline.fake.default_outcome = ServerError(500)
    booking = await book(world)

    await pipeline.run_worker(sms_backoff_base=0.01)

    assert len(pipeline.fake.requests) == MAX_ATTEMPTS
    [message] = await messages(UUID(booking["id"]))
    assert message["status"] == "failed"
    assert message["error_code"] == 20500
