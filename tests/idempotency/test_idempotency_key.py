"""Idempotency-Key: retries replay the first answer; concurrent duplicates never book twice."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from litestar import Litestar, post
from litestar.params import JSONBody

from booking import db
from booking.access.service import create_api_key
from booking.api_plugin import AccessPlugin
from booking.problems import EXCEPTION_HANDLERS
from booking.settings import get_settings
from tests.sessions.support import group_service, schedule, seat_body, seats_in_sql
from tests.support import World, at


async def _count_bookings() -> int:
    async with db.connection() as conn:
        count: int = await conn.fetchval("SELECT count(*) FROM booking WHERE status <> 'held'")
    return count


async def test_retry_replays_status_headers_and_body(world: World) -> None:
    client = world.client("partner")
    path = f"/v1/businesses/{world.business_id}/bookings"
    body = world.booking_body(at(3, 10))
    headers = {"Idempotency-Key": "order-4711"}
    first = await client.post(path, json=body, headers=headers)
    retry = await client.post(path, json=body, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["etag"] == first.headers["etag"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _count_bookings() == 1


async def test_same_key_with_another_body_is_422(world: World) -> None:
    client = world.client("partner")
    path = f"/v1/businesses/{world.business_id}/bookings"
    headers = {"Idempotency-Key": "order-4712"}
    assert (
        await client.post(path, json=world.booking_body(at(3, 10)), headers=headers)
    ).status_code == 201
    other = await client.post(path, json=world.booking_body(at(3, 11)), headers=headers)
    assert other.status_code == 422
    assert other.json()["type"] == "/problems/idempotency-key-reused"
    assert await _count_bookings() == 1


async def test_bad_keys_are_400(world: World) -> None:
    client = world.client("partner")
    path = f"/v1/businesses/{world.business_id}/bookings"
    for key in ("", "k" * 256):
        answer = await client.post(
            path, json=world.booking_body(at(3, 10)), headers={"Idempotency-Key": key}
        )
        assert answer.status_code == 400, key
        assert answer.json()["type"] == "/problems/malformed-request"
    ok = await client.post(
        path, json=world.booking_body(at(3, 10)), headers={"Idempotency-Key": "k" * 255}
    )
    assert ok.status_code == 201
    assert await _count_bookings() == 1


async def test_keys_are_per_principal(world: World) -> None:
    path = f"/v1/businesses/{world.business_id}/bookings"
    headers = {"Idempotency-Key": "shared-key"}
    a = await world.client("partner").post(
        path, json=world.booking_body(at(3, 10)), headers=headers
    )
    b = await world.client("partner_b").post(
        path, json=world.booking_body(at(3, 10)), headers=headers
    )
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


async def _race(world: World, clients: int, key: str | None) -> list[httpx.Response]:
    path = f"/v1/businesses/{world.business_id}/bookings"
    body = world.booking_body(at(4, 10))  # no staff: any of the three may take it
    headers = {"Idempotency-Key": key} if key else {}
    pool = [world.client("partner") for _ in range(clients)]
    return await asyncio.gather(*(c.post(path, json=body, headers=headers) for c in pool))


async def test_concurrent_duplicates_without_a_key_book_twice(world: World) -> None:
    """The race the key exists for: a double-submitted form books several staff members."""
    answers = await _race(world, 12, None)
    assert sum(a.status_code == 201 for a in answers) == 3
    assert await _count_bookings() == 3


async def test_concurrent_duplicates_with_a_key_book_once_and_all_get_the_answer(
    world: World,
) -> None:
    answers = await _race(world, 12, f"checkout-{uuid.uuid4()}")
    assert [a.status_code for a in answers] == [201] * 12
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 11
    assert await _count_bookings() == 1


async def test_patch_is_idempotent_too(world: World) -> None:
    client = world.client("front_desk")
    made = await client.post(
        f"/v1/businesses/{world.business_id}/bookings", json=world.booking_body(at(3, 10))
    )
    path = f"/v1/bookings/{made.json()['id']}"
    change = {"starts_at": at(3, 15).isoformat()}
    headers = {"Idempotency-Key": "move-1"}
    first, second = [await client.patch(path, json=change, headers=headers) for _ in range(2)]
    assert first.status_code == second.status_code == 200
    assert first.json()["version"] == second.json()["version"] == 2
    assert second.headers["etag"] == '"2"'


async def test_5xx_answers_are_not_stored(clean_db: None) -> None:
    calls: list[int] = []

    @post("/v1/flaky", status_code=201)
    async def flaky(data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return {"call": len(calls)}

    app = Litestar(
        route_handlers=[flaky], plugins=[AccessPlugin()], exception_handlers=EXCEPTION_HANDLERS
    )
    app.state.settings = get_settings()
    key = await create_api_key(kind="admin")
    headers = {"Authorization": f"Bearer {key.key}", "Idempotency-Key": "flaky-1"}
    transport = httpx.ASGITransport(app=app)  # same event loop as the db pool
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        failed = await client.post("/v1/flaky", json={"a": 1}, headers=headers)
        retried = await client.post("/v1/flaky", json={"a": 1}, headers=headers)
        replayed = await client.post("/v1/flaky", json={"a": 1}, headers=headers)
    assert failed.status_code == 500
    assert retried.status_code == 201
    assert retried.json() == {"call": 2}
    assert replayed.json() == {"call": 2}
    assert replayed.headers["idempotent-replayed"] == "true"
    assert len(calls) == 2


CUSTOMER = {"name": "Anna Ferri", "phone": "+393331234567", "locale": "it"}


async def _as_if_its_process_died(key: str) -> None:
    """The state a kill between the handler's commit and the stored answer leaves: the
    claim in progress, no answer, and its lock run out."""
    async with db.connection() as conn:
        done = await conn.execute(
            "UPDATE idempotency_record SET state = 'in_progress', status_code = NULL, "
            "headers = '{}'::jsonb, body = NULL, locked_until = now() - interval '1 second' "
            "WHERE key = $1",
            key,
        )
    assert done == "UPDATE 1"


async def _sent_and_retried_after_it_died(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], **request: Any
) -> tuple[httpx.Response, httpx.Response]:
    """The request, then the same request again once its first run has "died" with its
    answer unstored (:func:`_as_if_its_process_died`)."""
    first = await client.request(method, path, headers=headers, **request)
    await _as_if_its_process_died(headers["Idempotency-Key"])
    retry = await client.request(method, path, headers=headers, **request)
    return first, retry


async def test_a_retry_after_the_first_request_died_answers_its_booking_not_a_409(
    world: World,
) -> None:
    client = world.client("partner")
    path = f"/v1/businesses/{world.business_id}/bookings"
    body = world.booking_body(at(3, 10))
    headers = {"Idempotency-Key": "died-after-commit"}
    first, retry = await _sent_and_retried_after_it_died(client, "POST", path, headers, json=body)
    assert first.status_code == 201, first.text
    assert retry.status_code == 201, retry.text
    assert retry.json() == first.json()
    assert retry.headers["etag"] == first.headers["etag"]
    assert await _count_bookings() == 1
    stored = await client.post(path, json=body, headers=headers)
    assert stored.headers["idempotent-replayed"] == "true"
    assert stored.json() == first.json()


async def test_after_a_dead_request_only_that_principal_s_booking_is_its_answer(
    world: World,
) -> None:
    path = f"/v1/businesses/{world.business_id}/bookings"
    body = world.booking_body(at(3, 11), staff=world.staff[0])
    assert (await world.client("front_desk").post(path, json=body)).status_code == 201
    client = world.client("partner")
    headers = {"Idempotency-Key": "lost-the-race"}
    assert (await client.post(path, json=body, headers=headers)).status_code == 409
    await _as_if_its_process_died("lost-the-race")
    async with db.connection() as conn:  # the desk's booking as if made after the claim
        await conn.execute("UPDATE booking SET created_at = now() + interval '1 minute'")
    retry = await client.post(path, json=body, headers=headers)
    assert retry.status_code == 409, retry.text
    assert await _count_bookings() == 1


async def _as_if_it_died_before_booking(booking_id: str) -> None:
    """The key's booking as one made (and cancelled) an hour before the key's claim: to
    the claim, the request that holds it never booked."""
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE booking SET status = 'cancelled', created_at = now() - interval '1 hour' "
            "WHERE id = $1",
            uuid.UUID(booking_id),
        )


async def test_a_claim_whose_request_died_before_its_booking_books_on_retry(world: World) -> None:
    client = world.client("partner")
    path = f"/v1/businesses/{world.business_id}/bookings"
    body = world.booking_body(at(3, 10))
    headers = {"Idempotency-Key": "died-before"}
    first = await client.post(path, json=body, headers=headers)
    assert first.status_code == 201, first.text
    await _as_if_it_died_before_booking(first.json()["id"])
    await _as_if_its_process_died("died-before")
    again = await client.post(path, json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.json()["id"] != first.json()["id"]
    assert again.json()["status"] == "confirmed"
    assert await _count_bookings() == 2


async def test_a_retry_after_a_dead_request_is_not_answered_with_another_customer_s_booking(
    world: World,
) -> None:
    """The desk's request for Anna died before its booking; the desk then booked Bea at
    that time (another member of staff). Anna's retry books Anna, not answers Bea's."""
    client = world.client("front_desk")
    path = f"/v1/businesses/{world.business_id}/bookings"
    anna = world.booking_body(at(3, 10))
    headers = {"Idempotency-Key": "anna-died-before"}
    first = await client.post(path, json=anna, headers=headers)
    assert first.status_code == 201, first.text
    await _as_if_it_died_before_booking(first.json()["id"])
    await _as_if_its_process_died("anna-died-before")
    bea = world.booking_body(at(3, 10), name="Bea Conti", phone="+393339876543")
    booked_bea = await client.post(path, json=bea)
    assert booked_bea.status_code == 201, booked_bea.text
    retry = await client.post(path, json=anna, headers=headers)
    assert retry.status_code == 201, retry.text
    assert retry.json()["id"] not in (booked_bea.json()["id"], first.json()["id"])
    assert retry.json()["customer_id"] == first.json()["customer_id"]  # Anna
    assert retry.json()["status"] == "confirmed"
    assert await _count_bookings() == 3  # Anna's first (cancelled), Bea's, Anna's


async def test_seats_retried_after_their_request_died_are_booked_once(world: World) -> None:
    service_id = await group_service(world)
    session = await schedule(world, service_id, at(6, 18))
    client = world.client("partner")
    path = f"/v1/businesses/{world.business_id}/sessions/{session['id']}/bookings"
    headers = {"Idempotency-Key": "seats-died-after-commit"}
    first, retry = await _sent_and_retried_after_it_died(
        client, "POST", path, headers, json=seat_body(1, seats=2)
    )
    assert first.status_code == 201, first.text
    assert retry.status_code == 201, retry.text
    assert retry.json()["id"] == first.json()["id"]
    assert await seats_in_sql(session["id"]) == (2, 2)  # not four seats for one party
    other = await client.post(path, json=seat_body(2, seats=2))  # another guest, same class
    assert other.status_code == 201, other.text
    await _as_if_its_process_died("seats-died-after-commit")
    again = await client.post(path, json=seat_body(1, seats=2), headers=headers)
    assert again.json()["id"] == first.json()["id"]
    assert await seats_in_sql(session["id"]) == (4, 4)


async def test_a_visit_retried_after_its_request_died_is_booked_once(world: World) -> None:
    client = world.client("partner")
    path = f"/v1/businesses/{world.business_id}/sequences"
    body = {
        "starts_at": at(6, 10).isoformat(),
        "segments": [
            {"service_id": str(world.cut), "gap_after_minutes": 5},
            {"service_id": str(world.colour)},
        ],
        "customer": CUSTOMER,
    }
    headers = {"Idempotency-Key": "visit-died-after-commit"}
    first, retry = await _sent_and_retried_after_it_died(client, "POST", path, headers, json=body)
    assert first.status_code == 201, first.text
    assert retry.status_code == 201, retry.text
    assert retry.json()["booking"]["id"] == first.json()["booking"]["id"]
    assert retry.json()["segments"] == first.json()["segments"]
    assert await _count_bookings() == 1


async def test_a_hold_confirmation_retried_after_its_request_died_answers_the_booking(
    world: World,
) -> None:
    client = world.client("app")
    held = await client.post(
        f"/v1/businesses/{world.business_id}/holds",
        json={"service_id": str(world.cut), "starts_at": at(2, 10).isoformat()},
    )
    assert held.status_code == 201, held.text
    hold = held.json()
    path = f"/v1/holds/{hold['hold']['id']}/confirm"
    body = {
        "hold_token": hold["hold_token"],
        "customer": CUSTOMER,
    }
    headers = {"Idempotency-Key": "confirm-died"}
    first, retry = await _sent_and_retried_after_it_died(client, "POST", path, headers, json=body)
    assert first.status_code == 201, first.text
    assert retry.status_code == 201, retry.text
    assert retry.json() == first.json()
    # Without the dead twin, confirming twice is still refused.
    twice = await client.post(path, json=body, headers={"Idempotency-Key": "confirm-again"})
    assert twice.status_code == 409


async def test_a_hold_retried_after_its_request_died_is_not_blocked_by_its_lost_twin(
    world: World,
) -> None:
    """The dead request's hold has a token nobody knows any more: the retry releases it
    and holds the time afresh, instead of answering 409 against its own lost hold."""
    client = world.client("app")
    path = f"/v1/businesses/{world.business_id}/holds"
    body = {
        "service_id": str(world.cut),
        "starts_at": at(2, 10).isoformat(),
        "staff_id": str(world.staff[0]),
    }
    headers = {"Idempotency-Key": "hold-died"}
    first, retry = await _sent_and_retried_after_it_died(client, "POST", path, headers, json=body)
    assert first.status_code == 201, first.text
    assert retry.status_code == 201, retry.text
    assert retry.json()["hold"]["id"] != first.json()["hold"]["id"]
    async with db.connection() as conn:
        rows = await conn.fetch("SELECT id, status FROM booking ORDER BY created_at")
        events = await conn.fetch(
            "SELECT event FROM booking_history WHERE booking_id = $1 ORDER BY id",
            first.json()["hold"]["id"],
        )
    assert [r["status"] for r in rows] == ["cancelled", "held"]
    assert [e["event"] for e in events] == ["hold.created", "hold.released"]
    # The new hold's token confirms it.
    confirmed = await client.post(
        f"/v1/holds/{retry.json()['hold']['id']}/confirm",
        json={
            "hold_token": retry.json()["hold_token"],
            "customer": CUSTOMER,
        },
    )
    assert confirmed.status_code == 201, confirmed.text
    # Without a dead twin, a second hold of the same time by the same app is refused.
    again = await client.post(path, json=body, headers={"Idempotency-Key": "hold-other"})
    assert again.status_code == 409


async def test_a_cancel_or_move_retried_after_its_request_died_answers_what_it_did(
    world: World,
) -> None:
    """The retry carries the first run's If-Match, which named the version before that
    run's own change: it answers the booking as that run left it, not 412 or 409."""
    client = world.client("front_desk")
    made = await client.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(3, 10), staff=world.staff[0]),
    )
    path = f"/v1/bookings/{made.json()['id']}"
    move = {"starts_at": at(3, 15).isoformat()}
    keyed = {"Idempotency-Key": "mv", "If-Match": '"1"'}
    moved, again = await _sent_and_retried_after_it_died(client, "PATCH", path, keyed, json=move)
    assert moved.status_code == 200, moved.text
    assert again.status_code == 200, again.text
    assert again.json() == moved.json()
    assert again.headers["etag"] == '"2"'

    cancel = {"Idempotency-Key": "cx", "If-Match": '"2"'}
    cancelled, retried = await _sent_and_retried_after_it_died(
        client, "POST", f"{path}/cancel", cancel
    )
    assert cancelled.status_code == 200, cancelled.text
    assert retried.status_code == 200, retried.text
    assert retried.json() == cancelled.json()
    async with db.connection() as conn:
        topics = [r["topic"] for r in await conn.fetch("SELECT topic FROM outbox ORDER BY id")]
    assert topics == ["booking.created", "booking.changed", "booking.cancelled"]
    # Without a dead twin the same calls are refused as before.
    assert (await client.post(f"{path}/cancel", headers={"If-Match": '"3"'})).status_code == 409
    stale = await client.patch(path, json=move, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
