"""A visit (cut then colour) whose colourist falls ill: the lost-slot recovery finds the
visit by its segment, holds the whole visit at other starts where every segment fits,
and accepting moves every segment in one transaction (real PostgreSQL and worker)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from tests.guarantee.helpers import drain, expire_offers_now, fetch, fetchval, link, sms
from tests.notifications.fixtures import Pipeline
from tests.sequences.test_sequences import _half_visits, _overlaps, visit_body
from tests.support import World, at


async def _visit_then_colourist_ill(
    world: World, pipeline: Pipeline
) -> tuple[dict[str, Any], dict[str, Any]]:
    created = await world.client().post(
        f"/v1/businesses/{world.business_id}/sequences", json=visit_body(world, at(3, 10))
    )
    assert created.status_code == 201, created.text
    await drain(pipeline)
    # Staff 1 does the colour (the second segment); the cut's staff 0 stays well.
    response = await world.client("manager").post(
        f"/v1/businesses/{world.business_id}/staff/{world.staff[1]}/time-off",
        json={
            "starts_at": at(3, 10, 30).isoformat(),
            "ends_at": at(3, 12).isoformat(),
            "kind": "sick_leave",
        },
    )
    assert response.status_code == 201, response.text
    visit: dict[str, Any] = created.json()["booking"]
    outcome: dict[str, Any] = response.json()
    return visit, outcome


async def _segments(booking_id: str | UUID) -> list[dict[str, Any]]:
    return await fetch(
        "SELECT position, service_id, staff_id, starts_at, ends_at FROM booking_segment "
        "WHERE booking_id = $1 ORDER BY position",
        UUID(str(booking_id)),
    )


async def test_a_lost_segment_offers_the_whole_visit_held_elsewhere(
    world: World, pipeline: Pipeline
) -> None:
    visit, outcome = await _visit_then_colourist_ill(world, pipeline)

    assert outcome["affected_booking_ids"] == [visit["id"]]
    [offer] = outcome["offers"]
    assert offer["status"] == "open"
    assert 1 <= len(offer["options"]) <= 3
    lost = datetime.fromisoformat(visit["starts_at"])
    gaps = [abs(datetime.fromisoformat(o["starts_at"]) - lost) for o in offer["options"]]
    assert gaps == sorted(gaps)
    for option in offer["options"]:
        hold = await fetch(
            "SELECT status, is_sequence, hold_expires_at FROM booking WHERE id = $1",
            UUID(option["hold_id"]),
        )
        assert [(h["status"], h["is_sequence"]) for h in hold] == [("held", True)]
        held = await _segments(option["hold_id"])
        assert [s["position"] for s in held] == [1, 2]
        # The colour keeps its place after the cut and its 5-minute gap.
        assert (held[1]["starts_at"] - held[0]["ends_at"]).total_seconds() == 5 * 60
        # Nobody held is the sick colourist at the sick hours.
        assert not any(
            s["staff_id"] == world.staff[1]
            and s["starts_at"] < at(3, 12)
            and at(3, 10, 30) < s["ends_at"]
            for s in held
        )
    assert await _overlaps() == 0
    # Only the lost visit itself is short of a segment (its colour gave way to the sick
    # leave); every held visit holds both of its segments.
    assert await _half_visits() == 1
    at_risk = await fetchval(
        "SELECT at_risk_since IS NOT NULL FROM booking WHERE id = $1", UUID(visit["id"])
    )
    assert at_risk is True
    await drain(pipeline)
    assert len(await sms("offer_lost_slot")) == 1


async def test_accepting_moves_every_segment_into_the_held_visit(
    world: World, pipeline: Pipeline
) -> None:
    visit, outcome = await _visit_then_colourist_ill(world, pipeline)
    [offer] = outcome["offers"]
    chosen = offer["options"][0]
    held = await _segments(chosen["hold_id"])
    customer = world.client(None, headers={"Authorization": f"Bearer {link(visit['id'])}"})

    response = await customer.post(f"/v1/offers/{offer['id']}/accept", json={"option": 1})

    assert response.status_code == 200, response.text
    moved = response.json()["booking"]
    assert moved["id"] == visit["id"]
    assert moved["reference_code"] == visit["reference_code"]
    assert moved["starts_at"] == chosen["starts_at"]
    assert [
        (s["position"], s["staff_id"], s["starts_at"]) for s in await _segments(visit["id"])
    ] == [(s["position"], s["staff_id"], s["starts_at"]) for s in held]
    row = await fetch(
        "SELECT at_risk_since, change_count, version FROM booking WHERE id = $1",
        UUID(visit["id"]),
    )
    assert row == [{"at_risk_since": None, "change_count": 0, "version": visit["version"] + 1}]
    assert await fetchval("SELECT count(*) FROM booking WHERE status = 'held'") == 0
    assert await _overlaps() == 0
    assert await _half_visits() == 0
    await drain(pipeline)
    assert len(await sms("booking_changed")) == 1


async def test_expiry_gives_the_held_visits_times_back(world: World, pipeline: Pipeline) -> None:
    visit, outcome = await _visit_then_colourist_ill(world, pipeline)
    [offer] = outcome["offers"]
    await drain(pipeline)

    await expire_offers_now(offer["id"])
    await drain(pipeline)

    assert await fetchval("SELECT count(*) FROM booking WHERE status = 'held'") == 0
    active = await fetchval(
        "SELECT count(*) FROM allocation a JOIN reschedule_option o ON o.hold_id = a.booking_id "
        "WHERE o.offer_id = $1 AND a.active",
        UUID(offer["id"]),
    )
    assert active == 0
    assert len(await sms("offer_expired_customer")) == 1
    assert (
        await fetchval(
            "SELECT at_risk_since IS NOT NULL FROM booking WHERE id = $1", UUID(visit["id"])
        )
        is True
    )
