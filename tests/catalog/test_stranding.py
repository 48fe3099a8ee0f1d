"""Catalog changes that strand bookings put them through the lost-slot flow (at risk, an
offer of held alternatives) in the change's transaction, and the answer lists them."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from tests.catalog.helpers import ok
from tests.guarantee.helpers import book, fetch, fetchval
from tests.support import World, at, days_ahead
from tests.wire.test_times import check_times


def biz(world: World, rest: str = "") -> str:
    return f"/v1/businesses/{world.business_id}{rest}"


async def _assert_recovered(
    stranded: list[dict[str, Any]], lost: list[dict[str, Any]], zone: str = "Europe/Rome"
) -> None:
    assert sorted(s["booking_id"] for s in stranded) == sorted(b["id"] for b in lost)
    assert check_times(stranded, ZoneInfo(zone)) == len(stranded)  # starts_at each, local
    codes = {b["id"]: b["reference_code"] for b in lost}
    for item in stranded:
        assert item["reference_code"] == codes[item["booking_id"]]
        assert item["offer_id"] is not None
        assert item["offer_status"] == "open"
        row = (await fetch("SELECT at_risk_since, status FROM booking WHERE id = $1",
                           item["booking_id"]))[0]  # fmt: skip
        assert row["at_risk_since"] is not None
        assert row["status"] in ("pending", "confirmed")
        options = await fetchval(
            "SELECT count(*) FROM reschedule_option WHERE offer_id = $1", item["offer_id"]
        )
        assert options >= 1


async def test_shorter_hours_strand_the_bookings_left_outside(world: World) -> None:
    kept = await book(world, 3, 10, staff=0)
    lost = [await book(world, 3, 16, staff=0), await book(world, 4, 17, staff=0)]
    other_staff = await book(world, 3, 16, staff=1)
    manager = world.client("manager")
    weekdays = sorted({days_ahead(3).weekday(), days_ahead(4).weekday()})
    answer = await ok(
        await manager.patch(
            biz(world, f"/staff/{world.staff[0]}/hours"),
            json={
                "days": [
                    {"weekday": d, "ranges": [{"opens_at": "09:00", "closes_at": "13:00"}]}
                    for d in weekdays
                ],
                "reason": "afternoons off",
            },
        )
    )
    await _assert_recovered(answer["stranded"], lost)
    untouched = await fetch(
        "SELECT id FROM booking WHERE id = ANY($1::uuid[]) AND at_risk_since IS NULL",
        [kept["id"], other_staff["id"]],
    )
    assert len(untouched) == 2
    reason = await fetchval("SELECT at_risk_reason FROM booking WHERE id = $1", lost[0]["id"])
    assert reason == "working hours changed: afternoons off"
    history = await ok(await manager.get(f"/v1/bookings/{lost[0]['id']}/history"))
    assert "booking.at_risk" in [event["event"] for event in history]


async def test_a_closed_day_strands_that_days_bookings_only(world: World) -> None:
    lost = [await book(world, 5, 10, staff=2), await book(world, 5, 15, staff=2)]
    next_day = await book(world, 6, 10, staff=2)
    answer = await world.client("manager").put(
        biz(world, f"/staff/{world.staff[2]}/exceptions/{days_ahead(5).isoformat()}"),
        json={"closed": True, "note": "training"},
    )
    assert answer.status_code == 201, answer.text
    await _assert_recovered(answer.json()["stranded"], lost)
    assert await fetchval("SELECT at_risk_since FROM booking WHERE id = $1", next_day["id"]) is None


async def test_a_special_opening_strands_what_it_leaves_out(world: World) -> None:
    inside = await book(world, 5, 15, staff=1)
    outside = await book(world, 5, 10, staff=1)
    answer = await ok(
        await world.client("manager").put(
            biz(world, f"/staff/{world.staff[1]}/exceptions/{days_ahead(5).isoformat()}"),
            json={"ranges": [{"opens_at": "14:00", "closes_at": "20:00"}]},
        ),
        201,
    )
    await _assert_recovered(answer["stranded"], [outside])
    assert await fetchval("SELECT at_risk_since FROM booking WHERE id = $1", inside["id"]) is None
    # And the special hours are bookable until 20:00 that day, not on other days.
    late = await world.client("front_desk").post(
        biz(world, "/bookings"), json=world.booking_body(at(5, 19), staff=world.staff[1])
    )
    assert late.status_code == 201, late.text
    other_day = await world.client("front_desk").post(
        biz(world, "/bookings"), json=world.booking_body(at(6, 19), staff=world.staff[1])
    )
    assert other_day.status_code == 422, other_day.text


async def test_taking_staff_off_a_service_strands_their_bookings_of_it(world: World) -> None:
    colour = [
        await book(world, 3, 10, staff=1, service=world.colour),
        await book(world, 4, 10, staff=1, service=world.colour),
    ]
    cut_same_staff = await book(world, 3, 15, staff=1)
    answer = await ok(
        await world.client("manager").patch(
            biz(world, f"/services/{world.colour}"), json={"staff_ids": [str(world.staff[0])]}
        )
    )
    assert answer["service"]["staff_ids"] == [str(world.staff[0])]
    await _assert_recovered(answer["stranded"], colour)
    staff_offered = await fetch(
        "SELECT DISTINCT o.staff_id FROM reschedule_option o JOIN reschedule_offer r "
        "ON r.id = o.offer_id WHERE r.booking_id = ANY($1::uuid[])",
        [b["id"] for b in colour],
    )
    assert {row["staff_id"] for row in staff_offered} == {world.staff[0]}
    assert (
        await fetchval("SELECT at_risk_since FROM booking WHERE id = $1", cut_same_staff["id"])
        is None
    )


async def test_deactivating_staff_through_patch_uses_the_lost_slot_recovery(world: World) -> None:
    lost = [await book(world, 3, 10, staff=0), await book(world, 8, 11, staff=0)]
    answer = await ok(
        await world.client("manager").patch(
            biz(world, f"/staff/{world.staff[0]}"), json={"active": False, "reason": "moved away"}
        )
    )
    assert answer["staff"]["active"] is False
    await _assert_recovered(answer["stranded"], lost)
    reason = await fetchval("SELECT at_risk_reason FROM booking WHERE id = $1", lost[0]["id"])
    assert reason == "staff unavailable: moved away"  # the guarantee's own deactivation


async def test_a_refused_change_strands_nothing(world: World) -> None:
    made = await book(world, 3, 16, staff=0)
    manager = world.client("manager")
    path = biz(world, f"/staff/{world.staff[0]}/hours")
    refused = await manager.put(
        path,
        json={"days": [{"weekday": 0, "ranges": [{"opens_at": "09:00", "closes_at": "10:00"},
                                                  {"opens_at": "09:30", "closes_at": "11:00"}]}]},
    )  # fmt: skip
    assert refused.status_code == 422, refused.text
    stale = await manager.put(path, json={"days": []}, headers={"If-Match": '"nope"'})
    assert stale.status_code == 412
    assert await fetchval("SELECT at_risk_since FROM booking WHERE id = $1", made["id"]) is None
    assert await fetchval("SELECT count(*) FROM reschedule_offer") == 0
    assert await fetchval("SELECT count(*) FROM working_hours WHERE staff_id = $1",
                          world.staff[0]) == 7  # fmt: skip


async def test_a_remembered_context_sees_a_new_closed_day(world: World) -> None:
    desk = world.client("front_desk")
    warm = await desk.post(
        biz(world, "/bookings"), json=world.booking_body(at(6, 10), staff=world.staff[0])
    )
    assert warm.status_code == 201, warm.text
    await ok(
        await world.client("manager").put(
            biz(world, f"/staff/{world.staff[0]}/exceptions/{days_ahead(6).isoformat()}"),
            json={"closed": True},
        ),
        201,
    )
    refused = await desk.post(
        biz(world, "/bookings"), json=world.booking_body(at(6, 14), staff=world.staff[0])
    )
    assert refused.status_code == 422, refused.text
    assert "working hours" in refused.json()["detail"]


async def test_a_new_time_zone_strands_bookings_its_hours_no_longer_cover(world: World) -> None:
    # 10:00 in Rome is 04:00 in New York: outside the 09:00-18:00 hours once they are
    # read in New York time; 16:00 Rome (10:00 New York) is still inside them.
    lost = await book(world, 3, 10, staff=0)
    kept = await book(world, 3, 16, staff=0)
    answer = await ok(
        await world.client("manager").patch(biz(world), json={"time_zone": "America/New_York"})
    )
    assert answer["business"]["time_zone"] == "America/New_York"
    await _assert_recovered(answer["stranded"], [lost], "America/New_York")
    assert await fetchval("SELECT at_risk_since FROM booking WHERE id = $1", kept["id"]) is None
