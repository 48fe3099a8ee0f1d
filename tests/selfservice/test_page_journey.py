"""The booking page shows the customer's own journey: the friendly subset of the timeline
in plain words, never staff alerts, webhooks, promises or who at the desk did it."""

from __future__ import annotations

import re

from tests.guarantee.helpers import link
from tests.journey.helpers import deliver_all
from tests.notifications.fixtures import Pipeline, fake, pipeline, redis, twilio_api
from tests.support import World, at

__all__ = ["fake", "pipeline", "redis", "twilio_api"]


async def test_the_page_lists_what_happened_in_the_customers_words(
    world: World, pipeline: Pipeline
) -> None:
    desk = world.client("front_desk")
    made = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(3, 10), phone="+393331260001"),
    )
    booking = made.json()
    moved = await desk.patch(
        f"/v1/bookings/{booking['id']}",
        json={"starts_at": at(3, 12).isoformat()},
        headers={"If-Match": f'"{booking["version"]}"'},
    )
    assert moved.status_code == 200, moved.text
    await pipeline.run_worker()
    await deliver_all(pipeline, booking["id"])

    page = await world.client(None).get(f"/b/{link(booking['id'])}", params={"lang": "it"})

    assert page.status_code == 200
    section = page.text[page.text.index('id="journey"') :]
    items = re.findall(r'<li data-touchpoint="([^"]+)">(.*?)</li>', section, re.S)
    touchpoints = [touchpoint for touchpoint, _ in items]
    assert touchpoints[0] == "booking.created"
    assert "booking.changed" in touchpoints
    assert touchpoints.count("sms.sent") == 2  # the confirmation and the change, once each
    texts = " ".join(re.sub(r"\s+", " ", text) for _, text in items)
    assert "Prenotazione fatta" in texts
    assert "Prenotazione spostata" in texts
    assert "Messaggio inviato a te" in texts
    assert "consegnato" in texts
    for hidden in ("webhook", "promise", "alert", "front desk", "Counter"):
        assert hidden not in section.split("</section>")[0]
    english = await world.client(None).get(f"/b/{link(booking['id'])}", params={"lang": "en"})
    assert "Booking moved" in english.text
