"""The SMS a class, a visit and a series send: one message each, the right template in
the customer's language, with what the customer needs to know (seats, how many services,
how many appointments), through the real outbox and worker."""

from __future__ import annotations

from tests.guarantee.helpers import drain, fetch
from tests.notifications.fixtures import Pipeline
from tests.sequences.test_sequences import visit_body
from tests.series.test_series import WEEKS, series_body
from tests.sessions.support import book as book_seat
from tests.sessions.support import group_service, schedule
from tests.support import World, at


async def test_class_visit_and_series_each_send_one_message(
    world: World, pipeline: Pipeline
) -> None:
    yoga = await group_service(world)
    session = await schedule(world, yoga, at(6, 15))
    seat = await book_seat(world.client(), world, session["id"], 1, seats=2)
    assert seat.status_code == 201, seat.text
    visit = await world.client().post(
        f"/v1/businesses/{world.business_id}/sequences", json=visit_body(world, at(6, 10), 7)
    )
    assert visit.status_code == 201, visit.text
    series_json = series_body(world, "all_or_nothing")
    series_json["customer"]["locale"] = "en"
    series = await world.client().post(
        f"/v1/businesses/{world.business_id}/series", json=series_json
    )
    assert series.status_code == 201, series.text
    await drain(pipeline)

    messages = await fetch(
        "SELECT template, locale, to_phone, body FROM message ORDER BY created_at"
    )
    by_template: dict[str, list[dict[str, object]]] = {}
    for message in messages:
        by_template.setdefault(str(message["template"]), []).append(message)
    # One message per booking act: the series announces itself once, not once per week.
    assert {t: len(m) for t, m in by_template.items()} == {
        "class_booked": 1,
        "visit_booked": 1,
        "series_booked": 1,
    }
    (class_sms,) = by_template["class_booked"]
    assert class_sms["locale"] == "it"
    assert "2 posto/i" in str(class_sms["body"])
    assert "Yoga" in str(class_sms["body"])
    assert seat.json()["reference_code"] in str(class_sms["body"])
    (visit_sms,) = by_template["visit_booked"]
    assert visit_sms["to_phone"] == "+393360000007"
    assert "visita di 2 servizi" in str(visit_sms["body"])
    assert visit.json()["booking"]["reference_code"] in str(visit_sms["body"])
    (series_sms,) = by_template["series_booked"]
    assert series_sms["locale"] == "en"
    assert f"{WEEKS} appointments booked for Cut" in str(series_sms["body"])
    first = series.json()["occurrences"][0]["reference_code"]
    assert first in str(series_sms["body"])
    for message in messages:
        assert "/b/" in str(message["body"])  # each carries its manage link
