"""One journey per booking: every touchpoint in order, with actor, channel and local time,
read by the business, the partner that made it (only its own) and the customer's link."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from booking.access.service import create_api_key
from tests.bookings.test_bookings_api import move_to_later_today
from tests.guarantee.helpers import link
from tests.journey.helpers import (
    deliver_all,
    journey,
    send_reminder_now,
    subscribe_partner,
    touchpoints,
)
from tests.notifications.fixtures import Pipeline
from tests.support import World, at
from tests.webhooks.test_webhooks import Receiver

PHONE = "+393331230001"


async def test_partner_booking_reminder_desk_change_completion_in_order_with_actors(
    world: World, pipeline: Pipeline, receiver: Receiver
) -> None:
    await subscribe_partner(world, receiver, ["booking.changed", "booking.completed"])
    desk_key = (
        await create_api_key(
            kind="staff", role="front_desk", name="Desk Giulia", business_ids=[world.business_id]
        )
    ).key
    desk = world.client(None, headers={"Authorization": f"Bearer {desk_key}"})
    made = await world.client("partner").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(3, 10), phone=PHONE),
    )
    assert made.status_code == 201, made.text
    booking = made.json()
    await pipeline.run_worker()  # the confirmation SMS goes out
    await deliver_all(pipeline, booking["id"])
    await send_reminder_now(booking["id"])
    await pipeline.run_worker()  # the day-before reminder
    await deliver_all(pipeline, booking["id"])
    moved = await desk.patch(
        f"/v1/bookings/{booking['id']}", json={"starts_at": at(3, 12).isoformat()}
    )
    assert moved.status_code == 200, moved.text
    await pipeline.run_worker()  # the change SMS and the partner's booking.changed webhook
    await move_to_later_today(booking["id"])
    for action in ("check-in", "complete"):
        done = await desk.post(f"/v1/bookings/{booking['id']}/{action}")
        assert done.status_code == 200, done.text
    await pipeline.run_worker()

    body = await journey(world, booking["id"], "manager")

    assert body["audience"] == "business"
    assert body["time_zone"] == "Europe/Rome"
    steps = touchpoints(body)
    expected = [
        "booking.created",
        "sms.queued",
        "sms.sent",
        "sms.delivered",
        "reminder.queued",
        "reminder.sent",
        "reminder.delivered",
        "booking.changed",
        "sms.queued",
        "sms.sent",
        "webhook.delivered",
        "booking.checked_in",
        "booking.completed",
        "webhook.delivered",
    ]
    kept = [s for s in steps if s in set(expected)]
    # The change's SMS and its webhook leave from concurrent jobs of one worker pass, in
    # either order (CI saw the webhook first); everything else is in causal order.
    assert sorted(kept[9:11]) == ["sms.sent", "webhook.delivered"], steps
    assert kept[:9] + kept[11:] == expected[:9] + expected[11:], steps
    entries = body["entries"]
    times = [datetime.fromisoformat(e["at"]) for e in entries]
    assert times == sorted(times)
    assert all(e["at"].endswith(("+01:00", "+02:00")) for e in entries)  # Rome's offset
    created = entries[steps.index("booking.created")]
    assert created["actor"] == {"type": "partner", "name": "Marketplace A"}
    assert created["channel"] == "partner"
    changed = entries[steps.index("booking.changed")]
    assert changed["actor"] == {"type": "front_desk", "name": "Desk Giulia"}
    assert changed["channel"] == "front_desk"
    old_new = changed["detail"]["changes"]["starts_at"]
    assert datetime.fromisoformat(old_new["from"]) == at(3, 10)
    assert datetime.fromisoformat(old_new["to"]) == at(3, 12)
    delivered = entries[steps.index("sms.delivered")]
    assert delivered["detail"]["twilio_status"] == "delivered"
    assert delivered["detail"]["template"] == "booking_confirmed"
    assert delivered["detail"]["to"] == "customer"
    assert delivered["actor"] == {"type": "system", "name": "notifications"}
    hooks = [e for e in entries if e["touchpoint"] == "webhook.delivered"]
    assert [h["detail"]["event_type"] for h in hooks] == ["booking.changed", "booking.completed"]
    assert all(h["detail"]["partner"] == "Marketplace A" for h in hooks)
    assert all(
        h["detail"]["status_code"] == 204 or h["detail"]["status_code"] == 200 for h in hooks
    )
    assert entries[steps.index("booking.completed")]["detail"]["to_status"] == "completed"


async def test_a_failed_sms_shows_twilios_error_code(world: World, pipeline: Pipeline) -> None:
    made = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(3, 10), phone=PHONE),
    )
    booking = made.json()
    await pipeline.run_worker()
    [message] = list(pipeline.fake.accepted)
    await pipeline.fake.send_status_callback(message.sid, "undelivered", error_code=30005)

    body = await journey(world, booking["id"])

    [failed] = [e for e in body["entries"] if e["touchpoint"] == "sms.undelivered"]
    assert failed["detail"]["error_code"] == 30005
    assert failed["detail"]["twilio_status"] == "undelivered"


async def test_other_tenants_and_other_partners_get_404_and_the_customer_a_subset(
    world: World, pipeline: Pipeline, receiver: Receiver
) -> None:
    await subscribe_partner(world, receiver, ["booking.created"])
    made = await world.client("partner").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(3, 10), phone=PHONE),
    )
    booking = made.json()
    await pipeline.run_worker()
    url = f"/v1/bookings/{booking['id']}/journey"

    for who in ("other_staff", "partner_b", "app"):
        refused = await world.client(who).get(url)
        assert refused.status_code == 404, (who, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    missing = await world.client("manager").get(f"/v1/bookings/{UUID(int=7)}/journey")
    assert missing.status_code == 404

    partner = await journey(world, booking["id"], "partner")
    assert partner["audience"] == "partner"
    assert "webhook.delivered" in touchpoints(partner)

    customer = world.client(None, headers={"Authorization": f"Bearer {link(booking['id'])}"})
    answer = await customer.get(url)
    assert answer.status_code == 200, answer.text
    mine = answer.json()
    assert mine["audience"] == "customer"
    steps = touchpoints(mine)
    assert steps[0] == "booking.created"
    assert "sms.sent" in steps
    assert not [s for s in steps if s.startswith(("webhook.", "promise.", "sms.queued"))]
    assert mine["entries"][0]["actor"] == {"type": "partner", "name": "Marketplace A"}
    # Another booking's link reads nothing of this one.
    second = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(3, 14), phone="+393331230002"),
    )
    other = world.client(None, headers={"Authorization": f"Bearer {link(second.json()['id'])}"})
    assert (await other.get(url)).status_code == 404
