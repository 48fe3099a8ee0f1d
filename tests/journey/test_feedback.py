"""Feedback after the visit: asked once per completed booking, answered by SMS or on the
booking's page, a low score is a callback promise and one alert, partners hear of it."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from uuid import UUID

import httpx
import pytest

from booking import db
from booking.journey.feedback import ask_due, parse_score
from booking.outbox.service import enqueue_follow_ups
from tests.guarantee.helpers import link
from tests.journey.helpers import (
    ask_at_once,
    complete,
    deliver_all,
    inbound,
    journey,
    rows,
    send_reminder_now,
    subscribe_partner,
    touchpoints,
)
from tests.notifications.fixtures import Pipeline
from tests.support import World, at
from tests.webhooks.test_webhooks import Receiver

PHONE = "+393331240001"
ON_DUTY = "+393330009999"


def feedback_requests(pipeline: Pipeline, phone: str = PHONE) -> list[str]:
    return [
        r.body or ""
        for r in pipeline.fake.requests
        if r.to == phone and "voto da 1" in (r.body or "")
    ]


async def _book(world: World, who: str = "partner", hour: int = 10, phone: str = PHONE) -> str:
    made = await world.client(who).post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(3, hour), phone=phone),
    )
    assert made.status_code == 201, made.text
    booking_id: str = made.json()["id"]
    return booking_id


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("5", (5, "")),
        ("4 grazie!", (4, "grazie!")),
        (" 3/5 ok ", (3, "ok")),
        ("2 - troppa attesa", (2, "troppa attesa")),
        ("1.", (1, "")),
        ("6", None),
        ("10", None),
        ("45", None),
        ("grazie 5", None),
        ("STOP", None),
        ("", None),
    ],
)
def test_a_reply_is_a_score_when_it_starts_with_1_to_5(
    body: str, expected: tuple[int, str] | None
) -> None:
    assert parse_score(body) == expected


async def test_the_whole_story_create_reminder_desk_change_complete_low_score_by_sms(
    world: World, pipeline: Pipeline, receiver: Receiver
) -> None:
    await subscribe_partner(world, receiver, ["feedback.received"])
    await ask_at_once(world, ON_DUTY)
    booking_id = await _book(world)
    await pipeline.run_worker()
    await send_reminder_now(booking_id)
    await pipeline.run_worker()
    await deliver_all(pipeline, booking_id)
    moved = await world.client("front_desk").patch(
        f"/v1/bookings/{booking_id}", json={"starts_at": at(3, 12).isoformat()}
    )
    assert moved.status_code == 200, moved.text
    await complete(world, booking_id)
    await pipeline.run_worker()  # schedules the question...
    await pipeline.run_worker()  # ...which is due at once: the SMS goes out
    [question] = feedback_requests(pipeline)
    assert question.startswith("Salone Test: grazie della visita, Anna.")
    assert "/b/bt." in question

    reply = await inbound(pipeline.api, "2 troppa attesa", "SMfb1", PHONE)
    await pipeline.run_worker()  # the low score: promise, alert, partner webhook

    assert "Grazie" in reply.text
    [answer] = await rows("SELECT * FROM feedback WHERE booking_id = $1", UUID(booking_id))
    assert (answer["status"], answer["score"], answer["comment"], answer["channel"]) == (
        "received",
        2,
        "troppa attesa",
        "sms",
    )
    [promise] = await rows("SELECT * FROM promise WHERE kind = 'callback'")
    assert promise["booking_id"] == UUID(booking_id)
    assert promise["due_at"] - promise["made_at"] == timedelta(minutes=1440)
    alerts = [r for r in pipeline.fake.requests if r.to == ON_DUTY]
    assert len(alerts) == 1
    assert "voto basso 2/5" in (alerts[0].body or "")
    [(kind, event)] = [(e["type"], e["data"]) for _, e in receiver.received]
    assert kind == "feedback.received"
    assert (event["booking_id"], event["score"], event["comment"]) == (
        booking_id,
        2,
        "troppa attesa",
    )

    body = await journey(world, booking_id, "manager")
    steps = touchpoints(body)
    story = [
        "booking.created",
        "reminder.delivered",
        "booking.changed",
        "booking.checked_in",
        "booking.completed",
        "feedback.requested",
        "feedback.received",
        "promise.made",
    ]
    assert [s for s in steps if s in story] == story, steps
    entries = {e["touchpoint"]: e for e in body["entries"]}
    assert entries["booking.created"]["actor"] == {"type": "partner", "name": "Marketplace A"}
    assert entries["booking.changed"]["actor"]["type"] == "front_desk"
    assert entries["booking.completed"]["actor"]["type"] == "front_desk"
    received = entries["feedback.received"]
    assert received["actor"] == {"type": "customer", "name": "customer"}
    assert received["channel"] == "sms"
    assert received["detail"]["changes"] == {"score": 2, "comment": "troppa attesa"}
    assert entries["promise.made"]["detail"]["kind"] == "callback"
    times = [datetime.fromisoformat(e["at"]) for e in body["entries"]]
    assert times == sorted(times)

    read = await world.client("partner").get(f"/v1/bookings/{booking_id}/feedback")
    assert read.status_code == 200, read.text
    assert read.json()["score"] == 2
    assert read.json()["callback"]["status"] == "open"
    for stranger in ("other_staff", "partner_b"):
        refused = await world.client(stranger).get(f"/v1/bookings/{booking_id}/feedback")
        assert refused.status_code == 404
    # Staff call back: the promise is kept.
    called = await world.client("front_desk").post(f"/v1/bookings/{booking_id}/feedback/callback")
    assert called.status_code == 200, called.text
    assert called.json()["callback"]["status"] == "kept"


async def test_one_question_per_visit_with_the_worker_run_twice_or_killed(
    world: World, pipeline: Pipeline
) -> None:
    await ask_at_once(world)
    first = await _book(world, "front_desk", 10, PHONE)
    second = await _book(world, "front_desk", 14, "+393331240002")
    await complete(world, first)
    await complete(world, second)
    await pipeline.run_worker()  # both questions are scheduled (and asked)
    await pipeline.run_worker()
    # Two passes racing over the same due rows: SKIP LOCKED and the dedupe key.
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE feedback SET status = 'scheduled' WHERE booking_id = $1", UUID(first)
        )

    async def one_pass() -> None:
        async with db.transaction() as conn:
            await enqueue_follow_ups(pipeline_redis, await ask_due(conn, pipeline.settings))

    from arq import create_pool
    from arq.connections import RedisSettings

    pipeline_redis = await create_pool(RedisSettings.from_dsn(pipeline.settings.redis_url))
    try:
        await asyncio.gather(one_pass(), one_pass())
    finally:
        await pipeline_redis.aclose()
    await pipeline.run_worker()

    assert len(feedback_requests(pipeline, PHONE)) == 1
    assert len(feedback_requests(pipeline, "+393331240002")) == 1
    messages = await rows("SELECT booking_id FROM message WHERE template = 'feedback_request'")
    assert sorted(str(m["booking_id"]) for m in messages) == sorted([first, second])


async def test_a_worker_killed_mid_pass_asks_once_after_restart(
    world: World, pipeline: Pipeline
) -> None:
    await ask_at_once(world)
    booking_id = await _book(world, "front_desk")
    await complete(world, booking_id)

    class Killed(Exception):
        pass

    async def killed_pass() -> None:
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO feedback (business_id, booking_id, ask_at) VALUES ($1, $2, now())",
                world.business_id,
                UUID(booking_id),
            )
            assert await ask_due(conn, pipeline.settings)
            raise Killed

    # Killed inside the pass: its transaction never commits.
    with pytest.raises(Killed):
        await killed_pass()
    assert await rows("SELECT * FROM feedback") == []
    # Killed after the commit, before the SMS job was enqueued: the requeue cron sends it.
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO feedback (business_id, booking_id, ask_at) VALUES ($1, $2, now())",
            world.business_id,
            UUID(booking_id),
        )
        assert await ask_due(conn, pipeline.settings)
        await conn.execute(
            "UPDATE message SET next_attempt_at = now() - interval '1 minute' "
            "WHERE template = 'feedback_request'"
        )
    await pipeline.run_worker()
    await pipeline.run_worker()

    assert len(feedback_requests(pipeline)) == 1
    [row] = await rows("SELECT status FROM feedback")
    assert row["status"] == "asked"


async def test_never_for_no_show_cancelled_or_opted_out(world: World, pipeline: Pipeline) -> None:
    await ask_at_once(world)
    missed = await _book(world, "front_desk", 9, "+393331240011")
    cancelled = await _book(world, "front_desk", 11, "+393331240012")
    stopped = await _book(world, "front_desk", 13, "+393331240013")
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE booking SET starts_at = now() - interval '2 hours', "
            "ends_at = now() - interval '90 minutes', blocked_from = now() - interval '2 hours', "
            "blocked_until = now() - interval '80 minutes' WHERE id = $1",
            UUID(missed),
        )
    desk = world.client("front_desk")
    assert (await desk.post(f"/v1/bookings/{missed}/no-show")).status_code == 200
    assert (await desk.post(f"/v1/bookings/{cancelled}/cancel", json={})).status_code == 200
    await inbound(pipeline.api, "STOP", "SMstop1", "+393331240013")
    await complete(world, stopped)
    await pipeline.run_worker()
    await pipeline.run_worker()

    sent_to = {r.to for r in pipeline.fake.requests if "voto da 1" in (r.body or "")}
    assert sent_to == set()
    answers = await rows("SELECT booking_id, status, not_asked_reason FROM feedback")
    assert answers == [
        {
            "booking_id": UUID(stopped),
            "status": "not_asked",
            "not_asked_reason": "customer opted out of SMS (STOP)",
        }
    ]


async def test_stop_while_asked_still_opts_out_and_the_page_form_answers(
    world: World, pipeline: Pipeline
) -> None:
    await ask_at_once(world)
    booking_id = await _book(world, "front_desk")
    await complete(world, booking_id)
    await pipeline.run_worker()
    await pipeline.run_worker()
    assert len(feedback_requests(pipeline)) == 1

    await inbound(pipeline.api, "STOP", "SMstop2", PHONE)
    [customer] = await rows("SELECT sms_consent FROM customer WHERE phone = $1", PHONE)
    assert customer["sms_consent"] is False
    [still] = await rows("SELECT status FROM feedback")
    assert still["status"] == "asked"  # STOP is no answer

    customer_api = world.client(None, headers={"Authorization": f"Bearer {link(booking_id)}"})
    bad = await customer_api.post(f"/v1/bookings/{booking_id}/feedback", json={"score": 9})
    assert bad.status_code == 400
    given = await customer_api.post(
        f"/v1/bookings/{booking_id}/feedback", json={"score": 5, "comment": "perfetto"}
    )
    assert given.status_code == 200, given.text
    assert (given.json()["score"], given.json()["channel"]) == (5, "web")
    again = await customer_api.post(f"/v1/bookings/{booking_id}/feedback", json={"score": 1})
    assert again.status_code == 409
    by_staff = await world.client("front_desk").post(
        f"/v1/bookings/{booking_id}/feedback", json={"score": 1}
    )
    assert by_staff.status_code == 403
    await pipeline.run_worker()
    assert await rows("SELECT * FROM promise WHERE kind = 'callback'") == []  # 5 is no alarm


async def test_the_booking_page_asks_and_takes_the_answer_once(
    world: World, pipeline: Pipeline
) -> None:
    await ask_at_once(world)
    booking_id = await _book(world, "front_desk")
    token = link(booking_id)
    async with httpx.AsyncClient(base_url=world.base_url) as client:
        before = await client.get(f"/b/{token}")
        assert 'id="feedback-form"' not in before.text  # not before the visit
        await complete(world, booking_id)
        await pipeline.run_worker()
        page = await client.get(f"/b/{token}")
        assert 'id="feedback-form"' in page.text
        nonce = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert nonce is not None
        sent = await client.post(
            f"/b/{token}/feedback",
            data={"csrf": nonce.group(1), "score": "1", "comment": "mai più"},
        )
        assert sent.status_code == 303
        after = await client.get(sent.headers["location"])
        again = await client.post(
            f"/b/{token}/feedback", data={"csrf": nonce.group(1), "score": "5"}
        )

    assert "Grazie del tuo giudizio" in after.text
    assert 'id="feedback-given"' in after.text
    assert again.status_code == 409  # the first answer counts
    [answer] = await rows("SELECT score, comment, channel FROM feedback")
    assert answer == {"score": 1, "comment": "mai più", "channel": "web"}
    await pipeline.run_worker()
    [promise] = await rows("SELECT kind FROM promise WHERE kind = 'callback'")
    assert promise["kind"] == "callback"
