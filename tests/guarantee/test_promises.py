"""Promises with due times: the watchdog's one update, one staff alert, kept and broken."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from tests.guarantee.helpers import book, drain, execute, fetch, sms
from tests.notifications.fixtures import Pipeline
from tests.support import World, at

ON_DUTY = "+390600000002"


async def _promise(booking_id: str) -> dict[str, Any]:
    [row] = await fetch(
        "SELECT * FROM promise WHERE kind = 'confirmation' AND booking_id = $1", UUID(booking_id)
    )
    return row


async def test_watchdog_nudges_once_alerts_staff_once_and_records_kept_and_broken(
    world: World, pipeline: Pipeline
) -> None:
    await execute(
        "UPDATE business SET on_duty_phone = $1, confirm_within_minutes = 120 WHERE id = $2",
        ON_DUTY,
        world.business_id,
    )
    waiting = await book(world, 3, 10, staff=2, service=world.consult, phone="+393330000201")
    answered = await book(world, 3, 11, staff=2, service=world.consult, phone="+393330000202")
    assert waiting["status"] == answered["status"] == "pending"
    await drain(pipeline)
    promise = await _promise(waiting["id"])
    assert (promise["due_at"] - promise["made_at"]).total_seconds() == 120 * 60
    assert (promise["due_at"] - promise["nudge_at"]).total_seconds() == 30 * 60
    desk = world.client("front_desk")
    assert (await desk.post(f"/v1/bookings/{answered['id']}/confirm")).status_code == 200

    # Past the "working on it" threshold, with nothing done for the first booking.
    await execute("UPDATE promise SET nudge_at = now() - interval '1 second'")
    await drain(pipeline)
    await drain(pipeline)  # and again: still exactly once

    updates = await sms("promise_update_confirmation")
    assert [m["to_phone"] for m in updates] == ["+393330000201"]
    assert "alle" in updates[0]["body"]  # the due time, in Italian
    alerts = await sms("promise_alert_staff")
    assert [m["to_phone"] for m in alerts] == [ON_DUTY]
    assert waiting["reference_code"] in alerts[0]["body"]
    assert all(m["status"] == "sent" for m in updates + alerts)
    sent_to = [r.to for r in pipeline.fake.requests]
    assert sent_to.count("+393330000202") == 2  # request received + confirmed, no update
    assert (await _promise(answered["id"]))["status"] == "kept"
    first = await _promise(waiting["id"])
    assert first["status"] == "open"
    assert first["nudged_at"] is not None

    # The due time passes with still nothing done: broken, and partners hear of it.
    await execute(
        "UPDATE promise SET made_at = now() - interval '3 hours', "
        "nudge_at = now() - interval '2 hours', due_at = now() - interval '1 second' "
        "WHERE id = $1",
        first["id"],
    )
    await drain(pipeline)
    assert (await _promise(waiting["id"]))["status"] == "broken"
    topics = [r["topic"] for r in await fetch("SELECT topic FROM outbox ORDER BY id")]
    assert topics.count("promise.at_risk") == 1
    assert topics.count("promise.broken") == 1
    assert len(await sms("promise_alert_staff")) == 1

    manager = world.client("manager")
    stats = (await manager.get(f"/v1/businesses/{world.business_id}/promises/stats")).json()
    assert stats["kept"] == 1
    assert stats["broken"] == 1
    assert stats["kept_rate"] == 0.5
    assert stats["by_kind"]["confirmation"] == {"kept": 1, "broken": 1, "open": 0}


async def test_a_confirmed_booking_gets_no_update_and_no_alert(
    world: World, pipeline: Pipeline
) -> None:
    await execute(
        "UPDATE business SET on_duty_phone = $1 WHERE id = $2", ON_DUTY, world.business_id
    )
    booking = await book(world, 3, 10, staff=2, service=world.consult)
    await drain(pipeline)
    desk = world.client("front_desk")
    assert (await desk.post(f"/v1/bookings/{booking['id']}/confirm")).status_code == 200
    await execute("UPDATE promise SET nudge_at = now() - interval '1 second'")

    await drain(pipeline)

    assert await sms("promise_update_confirmation") == []
    assert await sms("promise_alert_staff") == []
    assert (await _promise(booking["id"]))["status"] == "kept"


async def test_front_desk_risk_view_lists_at_risk_bookings_offers_and_promises(
    world: World,
) -> None:
    lost = await book(world, 3, 10)
    await book(world, 3, 11, staff=2, service=world.consult, phone="+393330000301")
    manager = world.client("manager")
    response = await manager.post(
        f"/v1/businesses/{world.business_id}/staff/{world.staff[0]}/time-off",
        json={"starts_at": at(3, 9).isoformat(), "ends_at": at(3, 11).isoformat()},
    )
    assert response.status_code == 201
    desk = world.client("front_desk")

    view = await desk.get(
        f"/v1/businesses/{world.business_id}/front-desk/risk",
        # The offer for an appointment 3 days out holds for 6 h (docs/journey.md).
        params={"day": at(3, 0).date().isoformat(), "due_within_minutes": 360},
    )
    today = await desk.get(f"/v1/businesses/{world.business_id}/front-desk/risk")
    partner = await world.client("partner").get(
        f"/v1/businesses/{world.business_id}/front-desk/risk"
    )

    assert view.status_code == 200, view.text
    body = view.json()
    [at_risk] = body["at_risk"]
    assert at_risk["booking"]["id"] == lost["id"]
    assert at_risk["open_offer_id"] == body["open_offers"][0]["id"]
    assert len(body["open_offers"][0]["options"]) == 3
    kinds = [p["kind"] for p in body["promises_due_soon"]]
    assert kinds == ["offer_follow_up"]  # due with the offer (6 h); the consult's is later
    assert today.json()["at_risk"] == []
    assert partner.status_code == 403
