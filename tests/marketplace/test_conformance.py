"""Conformance of /actions-center/v3 with the booking server REST v3 definitions,
driven the way the Actions Center's test client drives a booking server."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import httpx

from booking import db
from tests.support import World, add_cabins, at


def ac(world: World, who: str = "partner", password: str | None = None) -> httpx.AsyncClient:
    secret = password if password is not None else world.keys[who]
    basic = base64.b64encode(f"actions-center:{secret}".encode()).decode()
    return world.client(None, headers={"Authorization": f"Basic {basic}"})


def slot(world: World, days: int, hour: int, minute: int = 0, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "merchant_id": str(world.business_id),
        "service_id": str(world.cut),
        "start_sec": str(int(at(days, hour, minute).timestamp())),
        "duration_sec": "1800",
    }
    body.update(extra)
    return body


def user(n: int = 1) -> dict[str, Any]:
    return {
        "user_id": f"user-{n}",
        "given_name": "Ada",
        "family_name": f"Lovelace{n}",
        "telephone": f"+3933312345{n:02d}",
        "email": f"ada{n}@example.com",
    }


async def booking_count() -> int:
    async with db.connection() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM booking"))


async def create(
    client: httpx.AsyncClient, the_slot: dict[str, Any], token: str, n: int = 1
) -> dict[str, Any]:
    response = await client.post(
        "/actions-center/v3/CreateBooking/",
        json={"slot": the_slot, "user_information": user(n), "idempotency_token": token},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def lease_of(client: httpx.AsyncClient, the_slot: dict[str, Any]) -> httpx.Response:
    return await client.post("/actions-center/v3/CreateLease/", json={"lease": {"slot": the_slot}})


async def test_health_check_needs_the_partner_password(listed: World) -> None:
    world = listed
    assert (await ac(world).get("/actions-center/v3/HealthCheck/")).status_code == 200
    wrong = await ac(world, password="bk_wrong").get("/actions-center/v3/HealthCheck/")
    assert wrong.status_code == 401
    assert wrong.headers["content-type"].startswith("application/problem+json")
    staff = await ac(world, "front_desk").get("/actions-center/v3/HealthCheck/")
    assert staff.status_code == 401
    # Credentials that are no Basic credentials at all: 401 problems, never a 500.
    async with httpx.AsyncClient(base_url=world.base_url) as raw:
        for value in ("Basic ñ".encode(), b"Basic !!!", b"Basic /w==", b"Basic", b"Bearer x"):
            answer = await raw.get(
                "/actions-center/v3/HealthCheck/", headers=[(b"authorization", value)]
            )
            assert answer.status_code == 401, (value, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")


async def test_lookup_create_list_status_reschedule_cancel(listed: World) -> None:
    world = listed
    client = ac(world)
    slots = [
        slot(world, 2, 9 + i // 2, 30 * (i % 2), resource_ids={"party_size": 1}) for i in range(8)
    ]
    found = await client.post(
        "/actions-center/v3/BatchAvailabilityLookup/",
        json={
            "merchant_id": str(world.business_id),
            "slot_time": [{k: v for k, v in s.items() if k != "merchant_id"} for s in slots],
        },
    )
    assert found.status_code == 200, found.text
    answers = found.json()["slot_time_availability"]
    assert [a["available"] for a in answers] == [True] * 8
    assert answers[0]["slot_time"]["start_sec"] == slots[0]["start_sec"]

    for s in slots:
        check = await client.post("/actions-center/v3/CheckAvailability/", json={"slot": s})
        assert check.status_code == 200
        assert check.json()["count_available"] == 1

    made = [await create(client, s, f"tok-{i}", i) for i, s in enumerate(slots)]
    assert all("booking_failure" not in m for m in made), made
    assert all(m["booking"]["status"] == "CONFIRMED" for m in made)
    first = made[0]["booking"]
    assert first["slot"]["start_sec"] == slots[0]["start_sec"]
    assert first["user_information"]["user_id"] == "user-0"

    listed = await client.post("/actions-center/v3/ListBookings/", json={"user_id": "user-0"})
    assert [b["booking_id"] for b in listed.json()["bookings"]] == [first["booking_id"]]

    state = await client.post(
        "/actions-center/v3/GetBookingStatus/", json={"booking_id": first["booking_id"]}
    )
    assert state.json()["booking_status"] == "CONFIRMED"

    async with db.connection() as conn:
        reference = await conn.fetchval(
            "SELECT reference_code FROM booking WHERE id = $1::uuid", first["booking_id"]
        )
    later = slot(world, 3, 14)
    moved = await client.post(
        "/actions-center/v3/UpdateBooking/",
        json={
            "booking": {"booking_id": first["booking_id"], "slot": later},
            "idempotency_token": "move-1",
        },
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["booking"]["booking_id"] == first["booking_id"]
    assert moved.json()["booking"]["slot"]["start_sec"] == later["start_sec"]
    async with db.connection() as conn:
        assert reference == await conn.fetchval(
            "SELECT reference_code FROM booking WHERE id = $1::uuid", first["booking_id"]
        )

    cancelled = await client.post(
        "/actions-center/v3/UpdateBooking/",
        json={"booking": {"booking_id": first["booking_id"], "status": "CANCELED"}},
    )
    assert cancelled.json()["booking"]["status"] == "CANCELED"
    state = await client.post(
        "/actions-center/v3/GetBookingStatus/", json={"booking_id": first["booking_id"]}
    )
    assert state.json()["booking_status"] == "CANCELED"


async def test_idempotency_token_returns_the_same_answer_concurrently_too(listed: World) -> None:
    world = listed
    client = ac(world)
    the_slot = slot(world, 2, 11)
    answers = await asyncio.gather(*(create(client, the_slot, "same-token") for _ in range(6)))
    assert all(a == answers[0] for a in answers)
    assert "booking" in answers[0]
    assert await create(client, the_slot, "same-token") == answers[0]
    assert await booking_count() == 1


async def test_slot_taken_meanwhile_is_slot_unavailable(listed: World) -> None:
    world = listed
    client = ac(world)
    the_slot = slot(world, 2, 12, resources={"staff_id": str(world.staff[0])})
    assert "booking" in await create(client, the_slot, "a", 1)
    again = await create(client, the_slot, "b", 2)
    assert again["booking_failure"]["cause"] == "SLOT_UNAVAILABLE"
    same_user = await create(client, the_slot, "c", 1)
    assert same_user["booking_failure"]["cause"] == "SLOT_ALREADY_BOOKED_BY_USER"
    assert await booking_count() == 1


async def test_a_lease_that_expired_is_lease_expired(listed: World) -> None:
    world = listed
    client = ac(world)
    the_slot = slot(world, 2, 15)
    leased = await client.post(
        "/actions-center/v3/CreateLease/",
        json={"lease": {"slot": the_slot, "user_reference": "u1"}},
    )
    assert leased.status_code == 200, leased.text
    lease = leased.json()["lease"]
    assert int(lease["lease_expiration_time_sec"]) > int(the_slot["start_sec"]) - 3 * 86400
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE booking SET hold_expires_at = now() - interval '1 second' WHERE status = 'held'"
        )
    response = await client.post(
        "/actions-center/v3/CreateBooking/",
        json={
            "slot": the_slot,
            "lease_ref": {"lease_id": lease["lease_id"]},
            "user_information": user(),
            "idempotency_token": "lease-1",
        },
    )
    assert response.json()["booking_failure"]["cause"] == "LEASE_EXPIRED"


async def test_a_live_lease_becomes_the_booking(listed: World) -> None:
    world = listed
    client = ac(world)
    the_slot = slot(world, 2, 16)
    lease = (await lease_of(client, the_slot)).json()["lease"]
    made = await client.post(
        "/actions-center/v3/CreateBooking/",
        json={
            "slot": the_slot,
            "lease_ref": {"lease_id": lease["lease_id"]},
            "user_information": user(),
            "idempotency_token": "lease-2",
        },
    )
    assert made.json()["booking"]["booking_id"] == lease["lease_id"].split(".")[0]
    assert made.json()["booking"]["status"] == "CONFIRMED"


async def test_bad_input_is_answered_and_changes_nothing(listed: World) -> None:
    world = listed
    client = ac(world)
    past = slot(world, -1, 10)
    odd = slot(world, 2, 10, duration_sec="1234")
    zero = slot(world, 2, 10, resources={"party_size": 0})
    unknown = dict(slot(world, 2, 10), merchant_id="00000000-0000-0000-0000-000000000000")
    for bad in (past, odd):
        answer = await create(client, bad, f"bad-{bad['start_sec']}-{bad['duration_sec']}")
        assert answer["booking_failure"]["cause"] == "SLOT_UNAVAILABLE"
    for body, status in (
        ({"slot": zero, "user_information": user(), "idempotency_token": "z"}, 400),
        ({"slot": unknown, "user_information": user(), "idempotency_token": "u"}, 404),
        (
            {
                "slot": dict(slot(world, 2, 10), merchant_id="nope"),
                "user_information": user(),
                "idempotency_token": "n",
            },
            400,
        ),
    ):
        response = await client.post("/actions-center/v3/CreateBooking/", json=body)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    truncated = await client.post(
        "/actions-center/v3/CreateBooking/",
        content=b'{"slot": {"merchant_id": "1',
        headers={"content-type": "application/json"},
    )
    assert truncated.status_code == 400
    for method in ("CreateBooking", "BatchAvailabilityLookup"):
        deep = await client.post(
            f"/actions-center/v3/{method}/",
            content=b'{"slot": ' + b"[" * 100_000,
            headers={"content-type": "application/json"},
        )
        assert deep.status_code == 400, deep.text
    lookup = await client.post(
        "/actions-center/v3/BatchAvailabilityLookup/",
        json={"merchant_id": str(world.business_id), "slot_time": [past, odd]},
    )
    assert [a["available"] for a in lookup.json()["slot_time_availability"]] == [False, False]
    assert await booking_count() == 0


async def test_a_partner_reaches_only_its_businesses_and_bookings(listed: World) -> None:
    world = listed
    made = await create(ac(world), slot(world, 2, 10), "iso", 1)
    other = ac(world, "partner_b")
    theirs = dict(slot(world, 2, 11), merchant_id=str(world.other_business_id))
    response = await ac(world).post(
        "/actions-center/v3/CreateBooking/",
        json={"slot": theirs, "user_information": user(), "idempotency_token": "x"},
    )
    assert response.status_code == 404
    status = await other.post(
        "/actions-center/v3/GetBookingStatus/", json={"booking_id": made["booking"]["booking_id"]}
    )
    assert status.status_code == 404
    listed = await other.post("/actions-center/v3/ListBookings/", json={"user_id": "user-1"})
    assert listed.status_code == 200
    assert listed.json()["bookings"] == []


async def test_a_batch_answers_each_slot_as_sent_across_services(listed: World) -> None:
    """One batch mixing services, staff (ours, another service's, not an id at all),
    int64 as a string or a number, and fields we do not read: each SlotTime comes back
    exactly as sent, in order, with its own answer; a malformed one is a 400."""
    world = listed
    client = ac(world)
    start = str(int(at(2, 10).timestamp()))
    cut = {"service_id": str(world.cut), "start_sec": start, "duration_sec": "1800"}
    colour = {"service_id": str(world.colour), "start_sec": int(start), "duration_sec": 3600}
    sent = [
        dict(cut, resource_ids={"staff_id": str(world.staff[0])}, availability_tag="a"),
        dict(colour, resource_ids={"staff_id": str(world.staff[1])}),
        dict(colour, resource_ids={"staff_id": str(world.staff[2])}),  # not for colour
        dict(cut, resource_ids={"staff_id": "not-an-id"}),
        dict(cut, duration_sec="3600"),  # cut lasts 30 minutes
        dict(cut),
        dict(colour, resource_ids={"party_size": 2}),
    ]
    found = await client.post(
        "/actions-center/v3/BatchAvailabilityLookup/",
        json={"merchant_id": str(world.business_id), "slot_time": sent},
    )
    assert found.status_code == 200, found.text
    answers = found.json()["slot_time_availability"]
    assert [a["slot_time"] for a in answers] == sent
    assert [a["available"] for a in answers] == [True, True, False, False, False, True, False]

    for bad in (
        dict(cut, start_sec="soon"),
        dict(cut, resource_ids={"party_size": 0}),
        dict(cut, service_id=""),
        {"start_sec": start, "duration_sec": "1800"},
    ):
        refused = await client.post(
            "/actions-center/v3/BatchAvailabilityLookup/",
            json={"merchant_id": str(world.business_id), "slot_time": [cut, bad]},
        )
        assert refused.status_code == 400, (bad, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "slot_time[1]" in refused.json()["field"], refused.json()
    empty = await client.post(
        "/actions-center/v3/BatchAvailabilityLookup/",
        json={"merchant_id": str(world.business_id), "slot_time": []},
    )
    assert empty.json() == {"slot_time_availability": []}


async def test_a_service_whose_only_cabin_is_off_has_no_slots_and_books_none(
    listed: World,
) -> None:
    """The cabin was in the feed when it was read; since, it is deactivated. The slots are
    unavailable (lookup, CreateBooking, CreateLease: SLOT_UNAVAILABLE, never an HTTP
    error), our own search answers no times, and the feed is still written."""
    world = listed
    manager = world.client("manager")
    (cabin,) = await add_cabins(world, 1)
    client = ac(world)
    pinned = slot(world, 2, 10, resources={"room_id": str(cabin)})
    lookup = {"merchant_id": str(world.business_id), "slot_time": [slot(world, 2, 10), pinned]}
    before = await client.post("/actions-center/v3/BatchAvailabilityLookup/", json=lookup)
    assert [s["available"] for s in before.json()["slot_time_availability"]] == [True, True]

    off = await manager.patch(
        f"/v1/businesses/{world.business_id}/resources/{cabin}",
        json={"active": False},
    )
    assert off.status_code == 200, off.text
    after = await client.post("/actions-center/v3/BatchAvailabilityLookup/", json=lookup)
    assert after.status_code == 200, after.text
    assert [s["available"] for s in after.json()["slot_time_availability"]] == [False, False]
    for n, the_slot in enumerate([slot(world, 2, 11), pinned], start=1):
        made = await create(client, the_slot, f"off-{n}", n)
        assert made["booking_failure"]["cause"] == "SLOT_UNAVAILABLE", made
        lease = await lease_of(client, the_slot)
        assert lease.status_code == 200, lease.text
        assert lease.json()["booking_failure"]["cause"] == "SLOT_UNAVAILABLE"
    assert await booking_count() == 0

    searched = await world.client("app").get(
        f"/v1/businesses/{world.business_id}/availability",
        params={
            "service_id": str(world.cut),
            "from": at(2, 0).isoformat(),
            "to": at(3, 0).isoformat(),
        },
    )
    assert searched.status_code == 200, searched.text
    assert searched.json()["slots"] == []
    feed = await client.get("/actions-center/v3/feeds/availability.json")
    assert feed.status_code == 200, feed.text
    services = {
        a["service_id"] for g in feed.json()["service_availability"] for a in g["availability"]
    }
    assert str(world.cut) not in services
    assert str(world.colour) in services


async def test_a_slot_the_schedule_no_longer_offers_is_slot_unavailable_not_an_error(
    listed: World,
) -> None:
    """Slots read in a feed before a change: a member of staff deactivated since, one who
    does not (or no longer) offer the service, a time outside working hours. CreateBooking,
    CreateLease and a reschedule answer SLOT_UNAVAILABLE, as CheckAvailability says."""
    world = listed
    client = ac(world)
    made = await create(client, slot(world, 2, 12), "kept", 9)
    booking_id = made["booking"]["booking_id"]
    off = await world.client("manager").patch(
        f"/v1/businesses/{world.business_id}/staff/{world.staff[1]}", json={"active": False}
    )
    assert off.status_code == 200, off.text
    gone = {
        "deactivated": slot(world, 2, 10, resources={"staff_id": str(world.staff[1])}),
        "not offering": slot(
            world,
            2,
            10,
            service_id=str(world.colour),
            duration_sec="3600",
            resources={"staff_id": str(world.staff[2])},
        ),
        "unknown": slot(
            world, 2, 10, resources={"staff_id": "7d1d2a4e-1f56-4c1c-9f0e-3c9d4a1b2c3d"}
        ),
        "outside hours": slot(world, 2, 3),
    }
    for n, (name, the_slot) in enumerate(gone.items(), start=1):
        check = await client.post("/actions-center/v3/CheckAvailability/", json={"slot": the_slot})
        assert check.json()["count_available"] == 0, name
        answer = await create(client, the_slot, f"gone-{n}", n)
        assert answer["booking_failure"]["cause"] == "SLOT_UNAVAILABLE", (name, answer)
        lease = await lease_of(client, the_slot)
        assert lease.status_code == 200, (name, lease.text)
        assert lease.json()["booking_failure"]["cause"] == "SLOT_UNAVAILABLE", name
        moved = await client.post(
            "/actions-center/v3/UpdateBooking/",
            json={"booking": {"booking_id": booking_id, "slot": the_slot}},
        )
        assert moved.status_code == 200, (name, moved.text)
        assert moved.json()["booking_failure"]["cause"] == "SLOT_UNAVAILABLE", name
    assert await booking_count() == 1
    status = await client.post(
        "/actions-center/v3/GetBookingStatus/", json={"booking_id": booking_id}
    )
    assert status.json()["booking_status"] == "CONFIRMED"


async def test_a_service_deactivated_since_the_feed_is_unavailable_an_unknown_one_missing(
    listed: World,
) -> None:
    world = listed
    client = ac(world)
    made = await create(client, slot(world, 2, 12), "kept", 9)
    off = await world.client("manager").patch(
        f"/v1/businesses/{world.business_id}/services/{world.colour}", json={"active": False}
    )
    assert off.status_code == 200, off.text
    colour = slot(world, 2, 10, service_id=str(world.colour), duration_sec="3600")
    batch = {"merchant_id": str(world.business_id), "slot_time": [slot(world, 2, 10), colour]}
    found = await client.post("/actions-center/v3/BatchAvailabilityLookup/", json=batch)
    assert found.status_code == 200, found.text  # the batch's other slots still answered
    assert [s["available"] for s in found.json()["slot_time_availability"]] == [True, False]
    check = await client.post("/actions-center/v3/CheckAvailability/", json={"slot": colour})
    assert check.json()["count_available"] == 0
    answer = await create(client, colour, "colour", 1)
    assert answer["booking_failure"]["cause"] == "SLOT_UNAVAILABLE"
    lease = await client.post("/actions-center/v3/CreateLease/", json={"lease": {"slot": colour}})
    assert lease.json()["booking_failure"]["cause"] == "SLOT_UNAVAILABLE"
    moved = await client.post(
        "/actions-center/v3/UpdateBooking/",
        json={"booking": {"booking_id": made["booking"]["booking_id"], "slot": colour}},
    )
    assert moved.json()["booking_failure"]["cause"] == "SLOT_UNAVAILABLE"
    assert await booking_count() == 1

    never = slot(world, 2, 10, service_id="7d1d2a4e-1f56-4c1c-9f0e-3c9d4a1b2c3d")
    unknown = await client.post("/actions-center/v3/CheckAvailability/", json={"slot": never})
    assert unknown.status_code == 404  # an id that never was ours is a bad request


async def test_a_repeated_cancel_answers_the_cancelled_booking_a_refused_change_is_a_failure(
    listed: World,
) -> None:
    """Business logic refusals are booking_failure with HTTP 200 (the v3 reference), and
    a cancel sent again - a retry, or two at once - answers the booking as cancelled."""
    world = listed
    client = ac(world)
    made = await create(client, slot(world, 2, 12), "to-cancel", 1)
    booking_id = made["booking"]["booking_id"]
    cancel = {"booking": {"booking_id": booking_id, "status": "CANCELED"}}
    both = await asyncio.gather(
        client.post("/actions-center/v3/UpdateBooking/", json=cancel),
        ac(world).post("/actions-center/v3/UpdateBooking/", json=cancel),
    )
    for answer in both:
        assert answer.status_code == 200, answer.text
        assert answer.json()["booking"]["status"] == "CANCELED"
    again = await client.post("/actions-center/v3/UpdateBooking/", json=cancel)
    assert again.status_code == 200, again.text
    assert again.json()["booking"] == both[0].json()["booking"]
    moved = await client.post(
        "/actions-center/v3/UpdateBooking/",
        json={"booking": {"booking_id": booking_id, "slot": slot(world, 2, 14)}},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["booking_failure"]["cause"] == "SLOT_UNAVAILABLE"
    async with db.connection() as conn:
        events = await conn.fetch(
            "SELECT event FROM booking_history WHERE booking_id = $1::uuid ORDER BY id",
            booking_id,
        )
    assert [e["event"] for e in events] == ["booking.created", "booking.cancelled"]


async def _as_if_its_process_died(token: str) -> None:
    """The state a kill between the booking's commit and the stored answer leaves."""
    async with db.connection() as conn:
        done = await conn.execute(
            "UPDATE idempotency_record SET state = 'in_progress', status_code = NULL, "
            "body = NULL, locked_until = now() - interval '1 second' WHERE key = $1",
            token,
        )
    assert done == "UPDATE 1"


async def test_a_token_retried_after_its_call_died_answers_that_booking(listed: World) -> None:
    """The same idempotency_token answers the same booking even when the first call's
    process died after its booking committed and before its answer was stored - not
    SLOT_ALREADY_BOOKED_BY_USER for the user's own retry, and not a second booking."""
    world = listed
    client = ac(world)
    the_slot = slot(world, 2, 11)
    first = await create(client, the_slot, "died-1")
    await _as_if_its_process_died("died-1")
    assert await create(client, the_slot, "died-1") == first
    assert await create(client, the_slot, "died-1") == first  # now stored
    # Another token of the same user for that slot is still "already booked".
    again = await create(client, the_slot, "other-token")
    assert again["booking_failure"]["cause"] == "SLOT_ALREADY_BOOKED_BY_USER"
    assert await booking_count() == 1


async def test_a_used_lease_is_a_booking_failure_and_a_dead_call_s_retry_its_booking(
    listed: World,
) -> None:
    world = listed
    client = ac(world)
    the_slot = slot(world, 2, 16)
    lease = (await lease_of(client, the_slot)).json()["lease"]

    async def book(token: str, n: int = 1) -> httpx.Response:
        return await client.post(
            "/actions-center/v3/CreateBooking/",
            json={
                "slot": the_slot,
                "lease_ref": {"lease_id": lease["lease_id"]},
                "user_information": user(n),
                "idempotency_token": token,
            },
        )

    made = await book("lease-died")
    assert "booking" in made.json(), made.text
    await _as_if_its_process_died("lease-died")
    retried = await book("lease-died")
    assert retried.status_code == 200
    assert retried.json() == made.json()
    same_user = await book("lease-again")
    assert same_user.status_code == 200, same_user.text
    assert same_user.json()["booking_failure"]["cause"] == "SLOT_ALREADY_BOOKED_BY_USER"
    other_user = await book("lease-other", 2)
    assert other_user.status_code == 200, other_user.text
    assert other_user.json()["booking_failure"]["cause"] == "LEASE_EXPIRED"
    assert await booking_count() == 1


async def test_a_token_a_running_call_holds_is_answered_409_inside_the_deadline(
    listed: World,
) -> None:
    """A retry that arrives while the first call with its token still runs waits for that
    call's answer, but not past the marketplace's 4 s deadline: then 409 (the v3 status
    for a concurrency abort), which the marketplace retries - not a 400 that says the
    request was bad. Nothing is booked by it."""
    world = listed
    client = ac(world)
    the_slot = slot(world, 2, 11)
    await create(client, the_slot, "still-running")
    async with db.connection() as conn:  # as if that first call were still running
        await conn.execute(
            "UPDATE idempotency_record SET state = 'in_progress', status_code = NULL, "
            "body = NULL, locked_until = now() + interval '1 minute'"
        )
    started = time.monotonic()
    response = await client.post(
        "/actions-center/v3/CreateBooking/",
        json={"slot": the_slot, "user_information": user(), "idempotency_token": "still-running"},
    )
    waited = time.monotonic() - started
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"] == "/problems/idempotency-in-progress"
    assert 2.5 < waited < 4.0
    assert await booking_count() == 1
