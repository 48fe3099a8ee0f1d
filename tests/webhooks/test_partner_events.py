"""Events a partner can rely on, through the real path: booking -> outbox -> arq worker ->
Twilio (fake) -> signed status callback to the API -> outbox -> worker -> signed webhook.

* ``message.delivered`` / ``message.failed``: once per SMS to the booking's customer,
  however often Twilio repeats its final status; also when Twilio refuses the send.
* ``booking.checked_in``, ``booking.completed``, ``booking.no_show`` reach the partner.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from arq import create_pool
from arq.connections import RedisSettings

from booking import db
from booking.access.service import create_api_key
from booking.notifications.service import queue_sms
from booking.outbox.service import enqueue_follow_ups
from tests.bookings.test_bookings_api import move_to_later_today
from tests.notifications.fixtures import Pipeline, messages
from tests.support import World, at
from tests.webhooks.test_webhooks import Receiver

EVENTS = [
    "message.delivered",
    "message.failed",
    "booking.checked_in",
    "booking.completed",
    "booking.no_show",
]


async def _subscribe(world: World, receiver: Receiver) -> None:
    issued = await create_api_key(
        kind="partner",
        partner_id=world.partner_id,
        business_ids=[world.business_id],
        scopes=["webhooks:manage", "bookings:read"],
    )
    client = world.client(None, headers={"Authorization": f"Bearer {issued.key}"})
    answer = await client.post(
        "/v1/webhook-endpoints", json={"url": f"{receiver.url}/p", "event_types": EVENTS}
    )
    assert answer.status_code == 201, answer.text
    receiver.secrets["p"] = answer.json()["secret"]


async def _partner_books(world: World, days: int, hour: int, phone: str) -> dict[str, Any]:
    answer = await world.client("partner").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(days, hour), phone=phone),
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _events(receiver: Receiver) -> list[tuple[str, dict[str, Any]]]:
    assert receiver.rejected == []
    return [(event["type"], event["data"]) for _, event in receiver.received]


async def _sid_of(booking: dict[str, Any]) -> str:
    [message] = await messages(UUID(booking["id"]))
    sid: str = message["provider_sid"]
    return sid


async def test_message_final_status_reaches_the_partner_once(
    world: World, pipeline: Pipeline, receiver: Receiver
) -> None:
    await _subscribe(world, receiver)
    delivered = await _partner_books(world, 3, 10, "+393331110001")
    undelivered = await _partner_books(world, 3, 11, "+393331110002")
    await pipeline.run_worker()  # the two confirmations go out
    assert len(pipeline.fake.accepted) == 2
    assert _events(receiver) == []  # nothing is final yet

    ok, lost = await _sid_of(delivered), await _sid_of(undelivered)
    fake = pipeline.fake
    for sid, status, code in [
        (ok, "sent", None),
        (ok, "delivered", None),
        (ok, "delivered", None),  # Twilio repeats itself
        (ok, "read", None),
        (lost, "undelivered", 30003),
        (lost, "undelivered", 30003),
        (ok, "sent", None),  # late and out of order
    ]:
        assert await fake.send_status_callback(sid, status, code) == 204
    await pipeline.run_worker()
    await pipeline.run_worker()  # a second worker run adds nothing

    events = _events(receiver)
    assert [topic for topic, _ in events].count("message.delivered") == 1
    assert [topic for topic, _ in events].count("message.failed") == 1
    by_topic = dict(events)
    [ok_message] = await messages(UUID(delivered["id"]))
    assert by_topic["message.delivered"]["booking_id"] == delivered["id"]
    assert by_topic["message.delivered"]["message_id"] == str(ok_message["id"])
    assert by_topic["message.delivered"]["reference_code"] == delivered["reference_code"]
    assert by_topic["message.delivered"]["template"] == "booking_confirmed"
    assert by_topic["message.delivered"]["status"] == "delivered"
    failed = by_topic["message.failed"]
    assert failed["booking_id"] == undelivered["id"]
    assert (failed["status"], failed["provider_status"]) == ("undelivered", "undelivered")
    assert failed["error_code"] == 30003


async def test_a_send_twilio_refuses_is_a_failed_message(
    world: World, pipeline: Pipeline, receiver: Receiver
) -> None:
    await _subscribe(world, receiver)
    pipeline.fake.script((400, 21211))  # invalid 'To' number: permanent
    booking = await _partner_books(world, 3, 10, "+393331110003")
    await pipeline.run_worker()
    await pipeline.run_worker()

    [(topic, data)] = _events(receiver)
    assert topic == "message.failed"
    assert (data["booking_id"], data["status"], data["error_code"]) == (
        booking["id"],
        "failed",
        21211,
    )


async def test_messages_to_the_business_announce_nothing(
    world: World, pipeline: Pipeline, receiver: Receiver
) -> None:
    await _subscribe(world, receiver)
    booking = await _partner_books(world, 3, 10, "+393331110004")
    async with db.transaction() as conn:  # an alert to the on-duty phone about that booking
        job = await queue_sms(
            conn,
            booking_id=UUID(booking["id"]),
            to="+393339998877",
            template="offer_expired_business",
            dedupe_key="on-duty:1",
        )
    assert job is not None
    redis = await create_pool(RedisSettings.from_dsn(pipeline.settings.redis_url))
    await enqueue_follow_ups(redis, [job])
    await redis.aclose()
    await pipeline.run_worker()
    assert sorted(m.to or "" for m in pipeline.fake.accepted) == ["+393331110004", "+393339998877"]
    for message in pipeline.fake.accepted:
        assert await pipeline.fake.send_status_callback(message.sid, "delivered") == 204
    await pipeline.run_worker()

    [(topic, data)] = _events(receiver)
    assert topic == "message.delivered"
    sent = await messages(UUID(booking["id"]))
    [customer_sms] = [m for m in sent if m["to_phone"] == "+393331110004"]
    assert data["message_id"] == str(customer_sms["id"])


async def test_arrival_completion_and_no_show_reach_the_partner(
    world: World, pipeline: Pipeline, receiver: Receiver
) -> None:
    await _subscribe(world, receiver)
    came = await _partner_books(world, 3, 10, "+393331110005")
    missed = await _partner_books(world, 3, 11, "+393331110006")
    desk = world.client("front_desk")
    await move_to_later_today(came["id"])
    async with db.connection() as conn:  # the other one started two hours ago
        await conn.execute(
            "UPDATE booking SET starts_at = now() - interval '2 hours', "
            "ends_at = now() - interval '90 minutes', blocked_from = now() - interval '2 hours', "
            "blocked_until = now() - interval '80 minutes' WHERE id = $1",
            UUID(missed["id"]),
        )
    for url in (
        f"/v1/bookings/{came['id']}/check-in",
        f"/v1/bookings/{came['id']}/complete",
        f"/v1/bookings/{missed['id']}/no-show",
    ):
        answer = await desk.post(url)
        assert answer.status_code == 200, answer.text
    await pipeline.run_worker()

    got = [(topic, data["booking_id"], data["status"]) for topic, data in _events(receiver)]
    assert sorted(got) == [
        ("booking.checked_in", came["id"], "checked_in"),
        ("booking.completed", came["id"], "completed"),
        ("booking.no_show", missed["id"], "no_show"),
    ]
