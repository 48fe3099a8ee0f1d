"""Twilio's webhooks over real HTTP: status callbacks, inbound replies, signatures."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx

from booking import db
from booking.notifications.signature import sign_twilio_request
from tests.fakes.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.notifications.fixtures import Pipeline, messages
from tests.notifications.test_pipeline import PHONE, book
from tests.support import World


async def post_signed(
    api: str, path: str, form: dict[str, str], *, token: str = DEFAULT_AUTH_TOKEN
) -> httpx.Response:
    signature = sign_twilio_request(token, api + path, form)
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        return await client.post(path, data=form, headers={"X-Twilio-Signature": signature})


def inbound_form(body: str, sid: str = "SMinbound0001", phone: str = PHONE) -> dict[str, str]:
    return {
        "AccountSid": DEFAULT_ACCOUNT_SID,
        "MessageSid": sid,
        "SmsSid": sid,
        "From": phone,
        "To": "+15005550006",
        "Body": body,
        "NumMedia": "0",
    }


async def consent() -> bool:
    async with db.connection() as conn:
        value: bool = await conn.fetchval(
            "SELECT sms_consent FROM customer WHERE phone = $1", PHONE
        )
    return value


async def test_signed_status_callback_updates_the_message(world: World, pipeline: Pipeline) -> None:
    booking = await book(world)
    await pipeline.run_worker()
    [accepted] = pipeline.fake.accepted

    assert await pipeline.fake.send_status_callback(accepted.sid, "sent") == 204
    assert await pipeline.fake.send_status_callback(accepted.sid, "delivered") == 204
    # A late "sent" never moves a delivered message backwards.
    assert await pipeline.fake.send_status_callback(accepted.sid, "sent") == 204

    [message] = await messages(UUID(booking["id"]))
    assert message["status"] == "delivered"
    assert message["provider_status"] == "delivered"
    assert message["delivered_at"] is not None


async def test_undelivered_callback_records_twilio_error_code(
    world: World, pipeline: Pipeline
) -> None:
    booking = await book(world)
    await pipeline.run_worker()
    [accepted] = pipeline.fake.accepted

    assert await pipeline.fake.send_status_callback(accepted.sid, "undelivered", 30003) == 204

    [message] = await messages(UUID(booking["id"]))
    assert message["status"] == "undelivered"
    assert message["error_code"] == 30003


async def test_forged_or_missing_signature_is_403_problem(world: World, pipeline: Pipeline) -> None:
    form = {"MessageSid": "SMx", "MessageStatus": "delivered"}
    forged = await post_signed(pipeline.api, "/v1/twilio/status", form, token="not-the-token")
    async with httpx.AsyncClient(base_url=pipeline.api, timeout=10) as client:
        unsigned = await client.post("/v1/twilio/status", data=form)
        inbound_unsigned = await client.post("/v1/twilio/inbound", data=inbound_form("STOP"))
    # Signed for another URL: Twilio signs the exact public URL it called.
    elsewhere = await post_signed(pipeline.api, "/v1/twilio/inbound", inbound_form("STOP"))
    tampered_form = inbound_form("STOP")
    signature = sign_twilio_request(
        DEFAULT_AUTH_TOKEN, pipeline.api + "/v1/twilio/inbound", tampered_form
    )
    tampered_form["Body"] = "START"
    async with httpx.AsyncClient(base_url=pipeline.api, timeout=10) as client:
        tampered = await client.post(
            "/v1/twilio/inbound", data=tampered_form, headers={"X-Twilio-Signature": signature}
        )

    for response in (forged, unsigned, inbound_unsigned, tampered):
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"] == "/problems/forbidden"
    assert elsewhere.status_code == 200  # the control: properly signed goes through


async def test_unknown_message_sid_is_acknowledged_without_error(
    world: World, pipeline: Pipeline
) -> None:
    response = await post_signed(
        pipeline.api,
        "/v1/twilio/status",
        {"MessageSid": "SMdoesnotexist", "MessageStatus": "delivered", "ErrorCode": "oops"},
    )
    empty = await post_signed(pipeline.api, "/v1/twilio/status", {})

    assert response.status_code == 204
    assert empty.status_code == 204


async def test_inbound_stop_and_start_switch_consent(world: World, pipeline: Pipeline) -> None:
    await book(world)
    assert await consent() is True

    stop = await post_signed(pipeline.api, "/v1/twilio/inbound", inbound_form("Stop", "SM1"))
    assert stop.status_code == 200
    assert "<Message>" not in stop.text  # Twilio answers its own keywords
    assert await consent() is False

    start = await post_signed(pipeline.api, "/v1/twilio/inbound", inbound_form("START", "SM2"))
    assert start.status_code == 200
    assert await consent() is True

    basta = await post_signed(pipeline.api, "/v1/twilio/inbound", inbound_form("basta!", "SM3"))
    assert "Non riceverai più messaggi" in basta.text  # ours: we answer it, in Italian
    assert await consent() is False
    aiuto = await post_signed(pipeline.api, "/v1/twilio/inbound", inbound_form("Aiuto", "SM4"))
    assert "Rispondi SI per confermare" in aiuto.text

    async with db.connection() as conn:
        rows = await conn.fetch("SELECT keyword, outcome FROM inbound_message ORDER BY id")
    assert [row["keyword"] for row in rows] == ["stop", "start", "stop", "help"]


async def test_confirmation_keyword_confirms_the_pending_booking(
    world: World, pipeline: Pipeline
) -> None:
    booking = await book(world, service=world.consult)
    assert booking["status"] == "pending"

    reply = await post_signed(pipeline.api, "/v1/twilio/inbound", inbound_form("Sì", "SMyes"))
    again = await post_signed(pipeline.api, "/v1/twilio/inbound", inbound_form("Sì", "SMyes"))

    assert reply.status_code == 200
    assert again.status_code == 200
    staff = world.client("front_desk")
    current = (await staff.get(f"/v1/bookings/{booking['id']}")).json()
    assert current["status"] == "confirmed"
    history = (await staff.get(f"/v1/bookings/{booking['id']}/history")).json()
    assert [e["event"] for e in history][-1] == "booking.confirmed"
    assert history[-1]["actor_type"] == "system"
    # The confirmation SMS comes through the outbox like any other.
    await pipeline.run_worker()
    # One worker run handles both outbox events, possibly at once: the order is not defined.
    assert sorted(m["template"] for m in await messages(UUID(booking["id"]))) == [
        "booking_confirmed",
        "booking_pending",
    ]
    nothing = await post_signed(pipeline.api, "/v1/twilio/inbound", inbound_form("SI", "SMn"))
    assert "Non ci sono prenotazioni in attesa di conferma" in nothing.text


async def test_message_history_follows_booking_access(world: World, pipeline: Pipeline) -> None:
    booking = await book(world)
    await pipeline.run_worker()
    path = f"/v1/bookings/{booking['id']}/messages"

    staff = await world.client("front_desk").get(path)
    other = await world.client("other_staff").get(path)
    link_holder = world.client(None, headers={"Authorization": f"Bearer {booking_token(booking)}"})
    customer = await link_holder.get(path)
    anonymous = await world.client(None).get(path)

    assert staff.status_code == 200
    [item] = staff.json()
    assert item["template"] == "booking_confirmed"
    assert item["status"] == "sent"
    assert item["to"] == PHONE
    assert item["provider_sid"] == pipeline.fake.accepted[0].sid
    assert "/b/bt.[redacted]" in item["body"]
    assert customer.status_code == 200
    assert other.status_code == 404
    assert anonymous.status_code == 401


def booking_token(booking: dict[str, Any]) -> str:
    token: str = booking["manage_token"]
    return token
