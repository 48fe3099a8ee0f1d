"""A cancelled class through the lost-slot recovery: each attendee's booking is put at
risk and offered their party's seats held in the next classes; accepting moves the
seats, expiry gives them back, and the held seats count against capacity under a race
(real PostgreSQL, the real worker, fake Twilio)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import httpx

from tests.guarantee.helpers import drain, execute, expire_offers_now, fetch, fetchval, link, sms
from tests.notifications.fixtures import Pipeline
from tests.sessions.support import book, group_service, schedule, seats_in_sql
from tests.support import World, at

PARTIES = (1, 2, 3)


async def _cancel(world: World, session_id: str) -> dict[str, Any]:
    response = await world.client().post(
        f"/v1/businesses/{world.business_id}/sessions/{session_id}/cancel",
        json={"reason": "teacher ill"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _class_with_attendees(
    world: World, pipeline: Pipeline, parties: tuple[int, ...] = PARTIES
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """A 12-seat class on day 3 with an earlier one (day 2) and two later ones (days 4
    and 5), the attendees booked in the day-3 class."""
    service_id = await group_service(world)
    sessions = {
        name: (await schedule(world, service_id, at(day, 10)))["id"]
        for name, day in (("earlier", 2), ("cancelled", 3), ("next", 4), ("after", 5))
    }
    attendees = []
    for index, party in enumerate(parties):
        response = await book(world.client(), world, sessions["cancelled"], index, party)
        assert response.status_code == 201, response.text
        attendees.append(response.json())
    await drain(pipeline)  # the confirmations go out first
    return sessions, attendees


def _customer(world: World, booking_id: str) -> httpx.AsyncClient:
    return world.client(None, headers={"Authorization": f"Bearer {link(booking_id)}"})


async def test_a_cancelled_class_offers_every_attendee_seats_held_in_the_next_classes(
    world: World, pipeline: Pipeline
) -> None:
    sessions, attendees = await _class_with_attendees(world, pipeline)

    outcome = await _cancel(world, sessions["cancelled"])

    assert outcome["session"]["status"] == "cancelled"
    assert outcome["cancelled_booking_ids"] == []
    assert sorted(outcome["affected_booking_ids"]) == sorted(a["id"] for a in attendees)
    assert len(outcome["offers"]) == 3
    offers = {offer["booking_id"]: offer for offer in outcome["offers"]}
    for attendee in attendees:
        offer = offers[attendee["id"]]
        assert offer["status"] == "open"
        assert offer["kind"] == "lost_slot"
        # The next classes after the cancelled one, earliest first (not the earlier one).
        assert [o["starts_at"] for o in offer["options"]] == [
            at(4, 10).isoformat(),
            at(5, 10).isoformat(),
        ]
        assert [o["hold_status"] for o in offer["options"]] == ["held", "held"]
    held = await fetch(
        "SELECT session_id::text, seats, hold_expires_at FROM booking WHERE status = 'held' "
        "ORDER BY seats"
    )
    assert sorted(h["seats"] for h in held if h["session_id"] == sessions["next"]) == [1, 2, 3]
    # The database counts the held seats like any hold; the attendees' seats stay in the
    # cancelled class until they move; the earlier class is untouched.
    assert await seats_in_sql(sessions["next"]) == (6, 6)
    assert await seats_in_sql(sessions["after"]) == (6, 6)
    assert await seats_in_sql(sessions["cancelled"]) == (6, 6)
    assert await seats_in_sql(sessions["earlier"]) == (0, 0)
    at_risk = await fetch(
        "SELECT id::text, status, at_risk_reason FROM booking WHERE at_risk_since IS NOT NULL"
    )
    assert sorted(r["id"] for r in at_risk) == sorted(a["id"] for a in attendees)
    assert {(r["status"], r["at_risk_reason"]) for r in at_risk} == {
        ("confirmed", "class cancelled: teacher ill")
    }
    # The desk sees them at risk (the cancelled class is a lost slot).
    listed = await world.client().get(
        f"/v1/businesses/{world.business_id}/front-desk/risk",
        params={"day": at(3, 10).date().isoformat()},
    )
    assert listed.status_code == 200, listed.text
    assert sorted(item["booking"]["id"] for item in listed.json()["at_risk"]) == sorted(
        a["id"] for a in attendees
    )

    await drain(pipeline)

    offer_sms = await sms("offer_class_cancelled")
    assert len(offer_sms) == 3
    assert await sms("booking_cancelled") == []
    bodies = {m["booking_id"]: m["body"] for m in offer_sms}
    party_of_two = bodies[UUID(attendees[1]["id"])]
    assert "la lezione di Yoga" in party_of_two
    assert "Ti teniamo 2 posti nelle prossime lezioni fino a " in party_of_two
    assert "1) " in party_of_two
    assert "2) " in party_of_two
    assert "/b/bt." in party_of_two
    assert "Ti teniamo 1 posto " in bodies[UUID(attendees[0]["id"])]


async def test_accepting_moves_the_seats_and_releases_the_other_held_class(
    world: World, pipeline: Pipeline
) -> None:
    sessions, attendees = await _class_with_attendees(world, pipeline)
    outcome = await _cancel(world, sessions["cancelled"])
    party_of_three = attendees[2]
    offer = next(o for o in outcome["offers"] if o["booking_id"] == party_of_three["id"])

    response = await _customer(world, party_of_three["id"]).post(
        f"/v1/offers/{offer['id']}/accept", json={"option": 1}
    )

    assert response.status_code == 200, response.text
    moved = response.json()["booking"]
    assert moved["id"] == party_of_three["id"]
    assert moved["reference_code"] == party_of_three["reference_code"]
    assert moved["version"] == party_of_three["version"] + 1
    assert moved["starts_at"] == at(4, 10).isoformat()
    assert moved["seats"] == 3
    row = await fetch(
        "SELECT session_id::text, at_risk_since, change_count FROM booking WHERE id = $1",
        UUID(moved["id"]),
    )
    assert row == [{"session_id": sessions["next"], "at_risk_since": None, "change_count": 0}]
    # The held 3 seats became the booking's own; the other class's 3 held seats and the
    # cancelled class's 3 are given back, in the same transaction.
    assert await seats_in_sql(sessions["next"]) == (6, 6)
    assert await seats_in_sql(sessions["after"]) == (3, 3)
    assert await seats_in_sql(sessions["cancelled"]) == (3, 3)
    [change] = await fetch(
        "SELECT actor_type, reason, changes FROM booking_history WHERE booking_id = $1 "
        "AND event = 'booking.changed'",
        UUID(moved["id"]),
    )
    assert change["actor_type"] == "customer"
    assert change["reason"].startswith("reschedule offer accepted: option 1")
    again = await _customer(world, party_of_three["id"]).post(
        f"/v1/offers/{offer['id']}/accept", json={"option": 2}
    )
    assert again.status_code == 409
    assert again.json()["type"] == "/problems/offer-closed"

    await drain(pipeline)
    assert len(await sms("booking_changed")) == 1
    # The other attendees' offers stay open.
    assert await fetchval("SELECT count(*) FROM reschedule_offer WHERE status = 'open'") == 2


async def test_expiry_gives_the_held_seats_back_and_tells_the_customer(
    world: World, pipeline: Pipeline
) -> None:
    sessions, attendees = await _class_with_attendees(world, pipeline)
    outcome = await _cancel(world, sessions["cancelled"])
    await drain(pipeline)
    party_of_two = attendees[1]
    offer = next(o for o in outcome["offers"] if o["booking_id"] == party_of_two["id"])

    await expire_offers_now(offer["id"])
    await drain(pipeline)

    statuses = await fetch(
        "SELECT h.status FROM reschedule_option o JOIN booking h ON h.id = o.hold_id "
        "WHERE o.offer_id = $1",
        UUID(offer["id"]),
    )
    assert [s["status"] for s in statuses] == ["expired", "expired"]
    assert await seats_in_sql(sessions["next"]) == (4, 4)
    assert await seats_in_sql(sessions["after"]) == (4, 4)
    assert (
        await fetchval("SELECT status FROM reschedule_offer WHERE id = $1", UUID(offer["id"]))
        == "expired"
    )
    assert await fetchval("SELECT count(*) FROM reschedule_offer WHERE status = 'open'") == 2
    [final] = await sms("offer_expired_customer")
    assert final["booking_id"] == UUID(party_of_two["id"])
    late = await _customer(world, party_of_two["id"]).post(
        f"/v1/offers/{offer['id']}/accept", json={"option": 1}
    )
    assert late.status_code == 410


async def test_held_seats_are_kept_against_a_race_of_direct_bookings(
    world: World, pipeline: Pipeline
) -> None:
    """Three attendees of 3 hold 9 of the next class's 12 seats; 20 direct bookings race
    the three acceptances for it: every acceptance wins, exactly 3 direct seats are sold,
    and the class never holds more than 12."""
    sessions, attendees = await _class_with_attendees(world, pipeline, parties=(3, 3, 3))
    outcome = await _cancel(world, sessions["cancelled"])
    assert await seats_in_sql(sessions["next"]) == (9, 9)
    offers = {offer["booking_id"]: offer for offer in outcome["offers"]}
    start = asyncio.Event()

    async def accept(attendee: dict[str, Any]) -> httpx.Response:
        client = _customer(world, attendee["id"])
        await start.wait()
        return await client.post(
            f"/v1/offers/{offers[attendee['id']]['id']}/accept", json={"option": 1}
        )

    async def direct(index: int) -> httpx.Response:
        client = world.client("partner")
        await start.wait()
        return await book(client, world, sessions["next"], 100 + index)

    accepting = [asyncio.create_task(accept(a)) for a in attendees]
    racing = [asyncio.create_task(direct(i)) for i in range(20)]
    await asyncio.sleep(0.05)
    start.set()
    accepted = await asyncio.gather(*accepting)
    booked = await asyncio.gather(*racing)

    assert [r.status_code for r in accepted] == [200, 200, 200], [r.text for r in accepted]
    won = [r for r in booked if r.status_code == 201]
    assert len(won) == 3
    assert {r.status_code for r in booked if r.status_code != 201} == {409}
    assert await seats_in_sql(sessions["next"]) == (12, 12)
    assert await seats_in_sql(sessions["cancelled"]) == (0, 0)
    assert await seats_in_sql(sessions["after"]) == (0, 0)
    assert (
        await fetchval(
            "SELECT count(*) FROM booking WHERE session_id = $1 AND status = 'confirmed'",
            UUID(sessions["next"]),
        )
        == 6
    )


async def test_a_party_that_fits_no_next_class_is_told_and_the_desk_alerted(
    world: World, pipeline: Pipeline
) -> None:
    """Only classes with room for the whole party are held; with none, the offer is
    closed at once, the customer is told no class has room and the desk alerted."""
    await execute(
        "UPDATE business SET on_duty_phone = '+390600000001' WHERE id = $1", world.business_id
    )
    service_id = await group_service(world)
    cancelled = (await schedule(world, service_id, at(3, 10)))["id"]
    small = (await schedule(world, service_id, at(4, 10), capacity=2))["id"]
    booked = await book(world.client(), world, cancelled, 1, 3)
    assert booked.status_code == 201, booked.text

    outcome = await _cancel(world, cancelled)

    [offer] = outcome["offers"]
    assert offer["status"] == "expired"
    assert offer["options"] == []
    assert await seats_in_sql(small) == (0, 0)
    await drain(pipeline)
    [told] = await sms("class_cancelled_no_room")
    assert "nessun'altra lezione ha posto per te" in told["body"]
    assert await sms("offer_expired_customer") == []  # nothing was held to release
    assert len(await sms("offer_expired_business")) == 1


async def test_no_reminder_for_a_cancelled_class_and_one_for_the_class_moved_to(
    world: World, pipeline: Pipeline
) -> None:
    sessions, attendees = await _class_with_attendees(world, pipeline, parties=(1, 1))
    outcome = await _cancel(world, sessions["cancelled"])
    await drain(pipeline)
    mover = attendees[0]
    offer = next(o for o in outcome["offers"] if o["booking_id"] == mover["id"])
    accepted = await _customer(world, mover["id"]).post(
        f"/v1/offers/{offer['id']}/accept", json={"option": 1}
    )
    assert accepted.status_code == 200, accepted.text
    await drain(pipeline)
    await execute("UPDATE reminder SET due_at = now() - interval '1 minute'")
    await drain(pipeline)

    reminders = await fetch(
        "SELECT booking_id::text, booking_starts_at, status FROM reminder "
        "WHERE status <> 'scheduled' OR due_at <= now() ORDER BY booking_id"
    )
    by_booking: dict[str, set[str]] = {}
    for row in reminders:
        by_booking.setdefault(row["booking_id"], set()).add(row["status"])
    # The attendee still in the cancelled class is reminded of nothing; the one who
    # moved is reminded of the new class only.
    assert by_booking[attendees[1]["id"]] == {"cancelled"}
    sent = [r for r in reminders if r["booking_id"] == mover["id"] and r["status"] == "sent"]
    assert sent
    assert {r["booking_starts_at"] for r in sent} == {at(4, 10)}
    assert len(await sms("reminder")) == len(sent)
