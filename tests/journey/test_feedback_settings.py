"""The business sets the feedback question's wording (IT/EN), its delay and the callback
time through the API: ETag/If-Match and the audit trail as in the catalog."""

from __future__ import annotations

from uuid import UUID

from tests.journey.helpers import ask_at_once, complete, rows
from tests.notifications.fixtures import Pipeline
from tests.support import World, at

PHONE = "+393331250001"


def url(world: World) -> str:
    return f"/v1/businesses/{world.business_id}/journey/feedback-settings"


async def test_a_manager_words_the_question_with_if_match_and_it_is_audited(
    world: World, pipeline: Pipeline
) -> None:
    manager = world.client("manager")
    read = await manager.get(url(world))
    assert read.status_code == 200, read.text
    body = read.json()
    assert (body["delay_minutes"], body["callback_within_minutes"]) == (120, 1440)
    assert body["wording"] == {"it": None, "en": None}
    assert "voto da 1" in body["built_in"]["it"]
    assert body["placeholders"] == ["business", "link", "name", "service"]
    etag = read.headers["etag"]

    change = {
        "delay_minutes": 0,
        "callback_within_minutes": 60,
        "wording": {"it": "{business}: ciao {name}, che voto dai a {service}? 1-5. {link}"},
    }
    changed = await manager.patch(url(world), json=change, headers={"If-Match": etag})
    assert changed.status_code == 200, changed.text
    assert changed.json()["wording"] == {"it": change["wording"]["it"], "en": None}
    assert changed.headers["etag"] != etag
    stale = await manager.patch(url(world), json={"delay_minutes": 5}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert stale.headers["content-type"].startswith("application/problem+json")
    again = await manager.get(url(world))
    assert again.headers["etag"] == changed.headers["etag"]
    assert again.json()["delay_minutes"] == 0

    audit = await manager.get(
        f"/v1/businesses/{world.business_id}/audit", params={"entity": "business"}
    )
    [entry] = [e for e in audit.json() if e["action"] == "feedback_changed"]
    assert entry["changes"]["delay_minutes"] == {"from": 120, "to": 0}
    assert entry["changes"]["callback_within_minutes"] == {"from": 1440, "to": 60}

    # The next question uses the business's words.
    await ask_at_once(world)  # keeps delay 0, adds the on-duty phone
    made = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(3, 10), phone=PHONE, name="Livia Neri"),
    )
    booking_id = made.json()["id"]
    await complete(world, booking_id)
    await pipeline.run_worker()  # the visit's outbox row schedules the question
    await pipeline.run_worker()  # the cron asks it
    [asked] = await rows(
        "SELECT body FROM message WHERE template = 'feedback_request' AND booking_id = $1",
        UUID(booking_id),
    )
    assert asked["body"].startswith("Salone")
    assert "ciao Livia, che voto dai a Cut? 1-5." in asked["body"]
    # A language set back to null is the built-in text again.
    reset = await manager.patch(url(world), json={"wording": {"it": None}})
    assert reset.json()["wording"] == {"it": None, "en": None}


async def test_bad_wording_and_strangers_are_refused(world: World) -> None:
    manager = world.client("manager")
    for bad in (
        {"wording": {"it": "{business} {secret}"}},
        {"wording": {"it": "broken {"}},
        {"wording": {"de": "Hallo"}},
        {"delay_minutes": -1},
        {"callback_within_minutes": 1},
        {},
    ):
        answer = await manager.patch(url(world), json=bad)
        assert answer.status_code in (400, 422), (bad, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert (await world.client("front_desk").get(url(world))).status_code == 200
    desk = await world.client("front_desk").patch(url(world), json={"delay_minutes": 5})
    assert desk.status_code == 403
    assert (await world.client("partner").get(url(world))).status_code == 403
    assert (await world.client("other_staff").get(url(world))).status_code == 404
    other = await world.client("other_staff").patch(url(world), json={"delay_minutes": 5})
    assert other.status_code == 404
