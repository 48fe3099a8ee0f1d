"""Bookings through the HTTP API: create, read, list, status machine."""

from __future__ import annotations

from datetime import datetime

from booking import db
from tests.support import World, at


async def _book(world: World, who: str = "front_desk", **kwargs: object) -> dict[str, object]:
    client = world.client(who)
    starts = kwargs.pop("starts", at(2, 10))
    response = await client.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(starts, **kwargs),  # type: ignore[arg-type]
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_create_returns_booking_with_reference_etag_and_history(world: World) -> None:
    client = world.client("front_desk")
    response = await client.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(2, 10), staff=world.staff[0], phone="+39 333 123 4567"),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "confirmed"
    assert body["channel"] == "front_desk"
    assert len(body["reference_code"]) == 6
    assert body["starts_at"].startswith(at(2, 10).astimezone().date().isoformat()[:4])
    assert response.headers["etag"] == '"1"'
    assert body["manage_token"].startswith("bt.")
    async with db.connection() as conn:
        customer = await conn.fetchrow("SELECT phone, locale FROM customer")
        outbox = await conn.fetch("SELECT topic FROM outbox")
    assert customer["phone"] == "+393331234567"
    assert [row["topic"] for row in outbox] == ["booking.created"]
    history = await client.get(f"/v1/bookings/{body['id']}/history")
    assert [event["event"] for event in history.json()] == ["booking.created"]
    assert history.json()[0]["actor_type"] == "staff"


async def test_service_needing_confirmation_starts_pending_and_confirm_is_compare_and_swap(
    world: World,
) -> None:
    booking = await _book(world, service=world.consult)
    assert booking["status"] == "pending"
    client = world.client("front_desk")
    stale = await client.post(f"/v1/bookings/{booking['id']}/confirm", headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    assert stale.json()["type"] == "/problems/version-mismatch"
    confirmed = await client.post(
        f"/v1/bookings/{booking['id']}/confirm", headers={"If-Match": '"1"'}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed"
    assert confirmed.headers["etag"] == '"2"'
    again = await client.post(f"/v1/bookings/{booking['id']}/confirm", headers={"If-Match": '"1"'})
    assert again.status_code == 412


async def test_partner_cannot_confirm_on_behalf_of_the_business(world: World) -> None:
    booking = await _book(world, who="partner", service=world.consult)
    response = await world.client("partner").post(f"/v1/bookings/{booking['id']}/confirm")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_pending_booking_blocks_the_time(world: World) -> None:
    await _book(world, service=world.consult, staff=world.staff[2])
    response = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(2, 10), service=world.cut, staff=world.staff[2]),
    )
    assert response.status_code == 409
    assert response.json()["alternatives"]


async def test_status_machine_walk_and_illegal_transitions(world: World) -> None:
    booking = await _book(world)
    client = world.client("front_desk")
    url = f"/v1/bookings/{booking['id']}"
    complete_early = await client.post(f"{url}/complete")
    assert complete_early.status_code == 409
    assert complete_early.json()["type"] == "/problems/invalid-transition"
    no_show_early = await client.post(f"{url}/no-show")
    assert no_show_early.status_code == 409  # cannot be a no-show before the start
    await move_to_later_today(booking["id"])
    checked_in = await client.post(f"{url}/check-in")
    assert checked_in.json()["status"] == "checked_in"
    cancel_after_check_in = await client.post(f"{url}/cancel", json={"reason": "late"})
    assert cancel_after_check_in.status_code == 409
    completed = await client.post(f"{url}/complete")
    assert completed.json()["status"] == "completed"
    assert completed.json()["version"] == 3
    history = await client.get(f"{url}/history")
    assert [e["event"] for e in history.json()] == [
        "booking.created",
        "booking.checked_in",
        "booking.completed",
    ]


async def move_to_later_today(booking_id: object) -> None:
    """Put the booking at 23:59 today in Rome (duration and buffers kept), bypassing the API."""
    async with db.connection() as conn:
        await conn.execute(
            """
            WITH t AS (SELECT ((date_trunc('day', now() AT TIME ZONE 'Europe/Rome')
                                + interval '1 day' - interval '1 minute')
                               AT TIME ZONE 'Europe/Rome') AS at)
            UPDATE booking SET starts_at = t.at, ends_at = t.at + (ends_at - starts_at),
                blocked_from = t.at - (starts_at - blocked_from),
                blocked_until = t.at + (blocked_until - starts_at)
            FROM t WHERE id = $1
            """,
            booking_id,
        )


async def test_check_in_is_refused_before_the_appointments_day(world: World) -> None:
    booking = await _book(world, starts=at(1, 9))  # tomorrow, Rome
    client = world.client("front_desk")
    refused = await client.post(f"/v1/bookings/{booking['id']}/check-in")
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"] == "/problems/check-in-too-early"
    assert at(1, 0).date().isoformat() in problem["detail"]
    assert "Europe/Rome" in problem["detail"]
    assert datetime.fromisoformat(problem["opens_at"]) == at(1, 0)
    unchanged = (await client.get(f"/v1/bookings/{booking['id']}")).json()
    assert (unchanged["status"], unchanged["version"]) == ("confirmed", 1)

    await move_to_later_today(booking["id"])  # the day has come, the start has not
    checked_in = await client.post(f"/v1/bookings/{booking['id']}/check-in")
    assert checked_in.status_code == 200, checked_in.text
    assert checked_in.json()["status"] == "checked_in"


async def test_cancel_with_reason_frees_the_time(world: World) -> None:
    booking = await _book(world, staff=world.staff[0])
    client = world.client("front_desk")
    cancelled = await client.post(
        f"/v1/bookings/{booking['id']}/cancel", json={"reason": "customer called"}
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancel_reason"] == "customer called"
    again = await client.post(f"/v1/bookings/{booking['id']}/cancel")
    assert again.status_code == 409
    rebooked = await client.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(2, 10), staff=world.staff[0], phone="+393331112222"),
    )
    assert rebooked.status_code == 201


async def test_no_show_after_start_is_recorded(world: World) -> None:
    booking = await _book(world)
    async with db.connection() as conn:  # move it into the past without the API's checks
        await conn.execute(
            "UPDATE booking SET starts_at = now() - interval '2 hours', "
            "ends_at = now() - interval '90 minutes', blocked_from = now() - interval '2 hours', "
            "blocked_until = now() - interval '80 minutes' WHERE id = $1",
            booking["id"],
        )
    response = await world.client("front_desk").post(f"/v1/bookings/{booking['id']}/no-show")
    assert response.status_code == 200
    assert response.json()["status"] == "no_show"


async def test_list_filters_and_cursor_pagination(world: World) -> None:
    made = []
    for hour in (9, 10, 11, 12, 13):
        made.append(await _book(world, starts=at(3, hour), staff=world.staff[hour % 3]))
    await world.client("front_desk").post(f"/v1/bookings/{made[0]['id']}/cancel")
    client = world.client("front_desk")
    url = f"/v1/businesses/{world.business_id}/bookings"
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(url, params=params)).json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [b["id"] for b in made]
    confirmed = (await client.get(url, params={"status": "confirmed"})).json()["items"]
    assert len(confirmed) == 4
    window = (
        await client.get(
            url,
            params={"from": at(3, 10).isoformat(), "to": at(3, 12).isoformat()},
        )
    ).json()["items"]
    assert [item["id"] for item in window] == [made[1]["id"], made[2]["id"]]
    by_staff = (await client.get(url, params={"staff_id": str(world.staff[0])})).json()["items"]
    assert {item["staff_id"] for item in by_staff} == {str(world.staff[0])}
    customer = made[1]["customer_id"]
    by_customer = (await client.get(url, params={"customer_id": customer})).json()["items"]
    assert len(by_customer) == 5  # one phone number, one customer


async def test_partner_lists_only_its_own_bookings(world: World) -> None:
    mine = await _book(world, who="partner", starts=at(4, 10))
    await _book(world, who="partner_b", starts=at(4, 11))
    await _book(world, who="front_desk", starts=at(4, 12))
    page = await world.client("partner").get(f"/v1/businesses/{world.business_id}/bookings")
    assert [item["id"] for item in page.json()["items"]] == [mine["id"]]
    other = page.json()["items"][0]
    hidden = await world.client("partner_b").get(f"/v1/bookings/{other['id']}")
    assert hidden.status_code == 404


async def test_other_tenant_cannot_see_or_touch(world: World) -> None:
    booking = await _book(world)
    intruder = world.client("other_staff")
    assert (await intruder.get(f"/v1/bookings/{booking['id']}")).status_code == 404
    assert (await intruder.post(f"/v1/bookings/{booking['id']}/cancel")).status_code == 404
    listing = await intruder.get(f"/v1/businesses/{world.business_id}/bookings")
    assert listing.status_code == 404


async def test_customer_token_reads_and_cancels_only_its_booking(world: World) -> None:
    first = await _book(world, starts=at(5, 10))
    second = await _book(world, starts=at(5, 11), phone="+393339998888")
    customer = world.client(None, headers={"Authorization": f"Bearer {first['manage_token']}"})
    assert (await customer.get(f"/v1/bookings/{first['id']}")).status_code == 200
    assert (await customer.get(f"/v1/bookings/{second['id']}")).status_code == 404
    cancelled = await customer.post(f"/v1/bookings/{first['id']}/cancel")
    assert cancelled.status_code == 200
    forged = str(first["manage_token"])[:-3] + "AAA"
    bad = world.client(None, headers={"Authorization": f"Bearer {forged}"})
    response = await bad.get(f"/v1/bookings/{first['id']}")
    assert response.status_code == 401


async def test_front_desk_rebooking_in_two_calls(world: World) -> None:
    booking = await _book(world, starts=at(6, 10))
    client = world.client("front_desk")
    code = str(booking["reference_code"])
    spoken = f"{code[:3].lower()}-{code[3:].lower()}"  # as read out at the counter
    options = await client.get(f"/v1/businesses/{world.business_id}/front-desk/rebooking/{spoken}")
    assert options.status_code == 200, options.text
    body = options.json()
    assert body["booking"]["id"] == booking["id"]
    assert len(body["alternatives"]) == 5
    first = body["alternatives"][0]
    moved = await client.patch(
        f"/v1/bookings/{booking['id']}",
        json={"starts_at": first["starts_at"], "staff_id": first["staff_id"]},
        headers={"If-Match": options.headers.get("etag") or f'"{body["booking"]["version"]}"'},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["reference_code"] == code
    missing = await client.get(f"/v1/businesses/{world.business_id}/front-desk/rebooking/ZZZZZZ")
    assert missing.status_code == 404


async def test_min_notice_binds_customers_but_not_the_desk(world: World) -> None:
    async with db.connection() as conn:  # three days' notice
        await conn.execute(
            "UPDATE business SET min_notice_minutes = 4320 WHERE id = $1", world.business_id
        )
    url = f"/v1/businesses/{world.business_id}/bookings"
    refused = await world.client("app").post(url, json=world.booking_body(at(2, 10)))
    assert refused.status_code == 422
    assert "notice" in refused.json()["detail"]
    accepted = await world.client("front_desk").post(url, json=world.booking_body(at(2, 10)))
    assert accepted.status_code == 201


async def test_past_and_outside_hours_are_refused(world: World) -> None:
    client = world.client("front_desk")
    url = f"/v1/businesses/{world.business_id}/bookings"
    past = await client.post(url, json=world.booking_body(at(-1, 10)))
    assert past.status_code == 422
    assert past.json()["field"] == "starts_at"
    night = await client.post(url, json=world.booking_body(at(2, 20)))
    assert night.status_code == 422
    assert "working hours" in night.json()["detail"]
    overrun = await client.post(url, json=world.booking_body(at(2, 17, 45)))
    assert overrun.status_code == 422  # 30 minutes from 17:45 ends after closing
