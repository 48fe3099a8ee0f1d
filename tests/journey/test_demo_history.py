"""The demo salon's four weeks of past journeys give the journey page something to show,
and nothing in them is left for a worker to send."""

from __future__ import annotations

from typing import Any

from booking.access.service import create_api_key
from booking.demo import seed_demo
from booking.demo_history import HISTORY_DAYS
from tests.journey.helpers import rows
from tests.support import World, days_ahead, rome


async def test_the_demo_has_weeks_of_journeys_with_changes_lost_slots_and_feedback(
    world: World,
) -> None:
    business_id = await seed_demo()
    assert await seed_demo() == business_id  # idempotent: nothing added the second time
    key = await create_api_key(
        kind="staff", role="manager", business_ids=[business_id], name="demo manager"
    )
    manager = world.client(None, headers={"Authorization": f"Bearer {key.key}"})
    period = {"from": days_ahead(-HISTORY_DAYS).isoformat(), "to": days_ahead(-1).isoformat()}

    answer = await manager.get(f"/v1/businesses/{business_id}/journey/metrics", params=period)

    assert answer.status_code == 200, answer.text
    t: dict[str, Any] = answer.json()["totals"]
    assert t["bookings"] >= 60
    assert set(t["bookings_by_channel"]) == {"front_desk", "partner", "web"}
    assert t["changed"] > 0
    assert set(t["changed_by"]) >= {"customer"}
    assert 0 < t["lost_slots_recovered"] < t["lost_slots"]
    assert 0 < t["reminders_delivered"] < t["reminders_sent"]
    assert t["no_shows"] > 0
    assert t["feedback_count"] > 20
    assert 1 < t["feedback_mean"] < 5
    assert len(t["feedback_by"]["staff"]) == 3
    assert t["promises"]["kept"] > 0
    assert t["promises"]["broken"] > 0
    assert t["confirmation_minutes"]["count"] > 0
    assert t["moments_of_truth"]["cancellation"]
    assert t["moments_of_truth"]["low_score"]
    assert sum(1 for day in answer.json()["days"] if day["bookings"]) >= 20
    # A past journey reads like one (created ... completed, feedback).
    [booking] = await rows(
        "SELECT b.id FROM booking b JOIN feedback f ON f.booking_id = b.id "
        "WHERE b.business_id = $1 AND f.score <= 2 LIMIT 1",
        business_id,
    )
    journey = await manager.get(f"/v1/bookings/{booking['id']}/journey")
    touchpoints = [e["touchpoint"] for e in journey.json()["entries"]]
    assert touchpoints[0] == "booking.created"
    assert "booking.completed" in touchpoints
    assert "feedback.received" in touchpoints
    # Nothing of the past is left for the worker: no unsent SMS, open promise or question.
    today = rome(days_ahead(0), 0)
    left = await rows(
        "SELECT (SELECT count(*) FROM message m JOIN booking b ON b.id = m.booking_id "
        "        WHERE b.business_id = $1 AND b.starts_at < $2 AND m.status = 'pending') AS sms,"
        " (SELECT count(*) FROM promise p JOIN booking b ON b.id = p.booking_id "
        "        WHERE b.business_id = $1 AND b.starts_at < $2 AND p.status = 'open') AS promises,"
        " (SELECT count(*) FROM feedback f WHERE f.business_id = $1 AND f.status = 'scheduled')"
        "  AS questions",
        business_id,
        today,
    )
    assert left == [{"sms": 0, "promises": 0, "questions": 0}]
