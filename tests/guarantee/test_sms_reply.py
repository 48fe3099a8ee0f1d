"""Replying 1/2/3 by SMS accepts an offer; any other text is a reply the business owes."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import httpx

from booking.notifications.signature import sign_twilio_request
from tests.fakes.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.guarantee.helpers import book, drain, execute, fetch, sms
from tests.notifications.fixtures import Pipeline
from tests.support import World, at

PHONE = "+393330000401"


async def _inbound(api: str, body: str, sid: str, phone: str = PHONE) -> httpx.Response:
    form = {
        "AccountSid": DEFAULT_ACCOUNT_SID,
        "MessageSid": sid,
        "SmsSid": sid,
        "From": phone,
        "To": "+15005550006",
        "Body": body,
        "NumMedia": "0",
    }
    path = "/v1/twilio/inbound"
    signature = sign_twilio_request(DEFAULT_AUTH_TOKEN, api + path, form)
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        return await client.post(path, data=form, headers={"X-Twilio-Signature": signature})


async def test_replying_2_takes_the_second_option(world: World, pipeline: Pipeline) -> None:
    booking = await book(world, 3, 10, phone=PHONE)
    response = await world.client("manager").post(
        f"/v1/businesses/{world.business_id}/staff/{world.staff[0]}/time-off",
        json={"starts_at": at(3, 9).isoformat(), "ends_at": at(3, 12).isoformat()},
    )
    [offer] = response.json()["offers"]

    reply = await _inbound(pipeline.api, " 2 ", "SMoffer2")
    duplicate = await _inbound(pipeline.api, " 2 ", "SMoffer2")

    assert reply.status_code == 200
    assert duplicate.status_code == 200
    [row] = await fetch("SELECT * FROM booking WHERE id = $1", UUID(booking["id"]))
    assert row["starts_at"] == datetime.fromisoformat(offer["options"][1]["starts_at"])
    assert row["version"] == booking["version"] + 1
    [change] = await fetch(
        "SELECT * FROM booking_history WHERE booking_id = $1 AND event = 'booking.changed'",
        UUID(booking["id"]),
    )
    assert change["channel"] == "sms"
    [inbound] = await fetch("SELECT outcome, booking_id FROM inbound_message")
    assert inbound["outcome"] == "offer accepted: option 2"
    # Nothing left to accept: the sender is told so.
    again = await _inbound(pipeline.api, "1", "SMoffer3")
    assert "Non ci sono proposte aperte" in again.text
    await drain(pipeline)
    assert len(await sms("booking_changed")) == 1


async def test_free_text_is_a_reply_owed_and_kept_when_the_business_answers(
    world: World, pipeline: Pipeline
) -> None:
    await book(world, 3, 10, phone=PHONE)
    await drain(pipeline)

    response = await _inbound(pipeline.api, "Posso portare mia figlia?", "SMfree1")

    assert response.status_code == 200
    [promise] = await fetch("SELECT * FROM promise WHERE kind = 'reply'")
    assert promise["customer_phone"] == PHONE
    assert promise["status"] == "open"
    # The business answers (any message to that phone), the watchdog records it kept.
    await execute("UPDATE promise SET made_at = made_at - interval '1 minute'")
    await execute(
        "INSERT INTO message (business_id, to_phone, dedupe_key, template, locale, body, status) "
        "VALUES ($1, $2, 'manual-answer', 'manual', 'it', 'Certo!', 'sent')",
        world.business_id,
        PHONE,
    )
    await drain(pipeline)
    [promise] = await fetch("SELECT * FROM promise WHERE kind = 'reply'")
    assert promise["status"] == "kept"
