"""Finding 8 of issue 18: another tenant's resource answers exactly like a random id.

Walks the app's whole route table: every operation with an id in its path is called
twice by principals who may not see the world's business (a manager of another business,
another partner, another booking's link): once with the real ids of the world's rows and
once with random ids. The two answers must be the same (status, problem type, title and
detail), so no answer tells an outsider that an id exists.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from litestar.routes import HTTPRoute

from booking import db
from booking.access.service import create_api_key
from booking.app import create_app
from tests.access.helpers import book, booking_link
from tests.support import World, at

PARAM = re.compile(r"\{(\w+):(\w+)\}")
# A plausible body per operation, so validation passes and the lookup is what answers.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/holds/{hold_id:uuid}/confirm"): {
        "hold_token": "x" * 32,
        "customer": {"name": "Mario Rossi", "phone": "+393331234567"},
    },
    ("POST", "/v1/holds/{hold_id:uuid}/release"): {"hold_token": "x" * 32},
    ("PATCH", "/v1/bookings/{booking_id:uuid}"): "move",
    ("PATCH", "/v1/businesses/{business_id:uuid}/staff/{staff_id:uuid}"): {"name": "Nuovo"},
    ("PATCH", "/v1/businesses/{business_id:uuid}/services/{service_id:uuid}"): {"name": "Nuovo"},
    ("PATCH", "/v1/businesses/{business_id:uuid}/resources/{resource_id:uuid}"): {"name": "Nuova"},
    ("PATCH", "/v1/businesses/{business_id:uuid}"): {"address": "Via Roma 1"},
    ("POST", "/v1/businesses/{business_id:uuid}/resources"): {"kind": "room", "name": "Sala"},
}
# Path parameters that are not ids: the same value in both calls.
FIXED = {"day": "2030-01-07"}


def _operations() -> list[tuple[str, str]]:
    operations = []
    for route in create_app().routes:
        if not isinstance(route, HTTPRoute) or ":uuid}" not in route.path:
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                operations.append((method, route.path))
    return operations


async def _real_ids(world: World) -> dict[str, str]:
    """A real row of the world's business for every id a path names."""
    by_partner = await book(world, "partner", 3, 10)
    hold = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/holds",
        json={"service_id": str(world.cut), "starts_at": at(4, 10).isoformat()},
    )
    assert hold.status_code == 201, hold.text
    resource = await world.client("manager").post(
        f"/v1/businesses/{world.business_id}/resources", json={"kind": "room", "name": "Sala 1"}
    )
    assert resource.status_code == 201, resource.text
    hooks = await create_api_key(
        kind="partner",
        partner_id=world.partner_id,
        business_ids=[world.business_id],
        scopes=["webhooks:manage", "bookings:read"],
    )
    async with httpx.AsyncClient(
        base_url=world.base_url, headers={"Authorization": f"Bearer {hooks.key}"}
    ) as client:
        endpoint = await client.post(
            "/v1/webhook-endpoints",
            json={"url": "http://127.0.0.1:9/hook", "event_types": ["booking.created"]},
        )
    assert endpoint.status_code == 201, endpoint.text
    endpoint_id = endpoint.json()["endpoint"]["id"]
    # A reschedule offer: staff 2 leaves, the guarantee offers their booking held times.
    lost = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(5, 11), staff=world.staff[2], phone="+393338887777"),
    )
    assert lost.status_code == 201, lost.text
    leaves = await world.client("manager").patch(
        f"/v1/businesses/{world.business_id}/staff/{world.staff[2]}", json={"active": False}
    )
    assert leaves.status_code == 200, leaves.text
    async with db.connection() as conn:
        delivery_id = await conn.fetchval(
            "INSERT INTO webhook_delivery (endpoint_id, outbox_event_id, message_id, event_type, "
            "payload, status) VALUES ($1, 1, 'msg_1', 'booking.created', '{}', 'failed') "
            "RETURNING id",
            uuid.UUID(endpoint_id),
        )
        key_id = await conn.fetchval(
            "SELECT id FROM api_key WHERE kind = 'staff' AND $1 = ANY(business_ids) LIMIT 1",
            world.business_id,
        )
        message_booking = by_partner["id"]
        offer_id = await conn.fetchval(
            "SELECT id FROM reschedule_offer WHERE booking_id = $1", uuid.UUID(lost.json()["id"])
        )
        assert offer_id is not None
        customer_id = await conn.fetchval(
            "SELECT customer_id FROM booking WHERE id = $1", uuid.UUID(str(by_partner["id"]))
        )
        # A calendar feed, a calendar connection and a class of the world's business.
        feed_id = await conn.fetchval(
            "INSERT INTO calendar_feed (business_id, secret_hash, created_by) "
            "VALUES ($1, '\\x00', 'test') RETURNING id",
            world.business_id,
        )
        connection_id = await conn.fetchval(
            "INSERT INTO calendar_connection (business_id, staff_id, kind, url, created_by) "
            "VALUES ($1, $2, 'ics', 'http://127.0.0.1:9/cal.ics', 'test') RETURNING id",
            world.business_id,
            world.staff[0],
        )
        session_id = await conn.fetchval(
            "INSERT INTO session (business_id, service_id, staff_id, starts_at, ends_at, "
            "blocked_from, blocked_until, capacity) SELECT $1, $2, $3, t, t + interval '1 hour', "
            "t, t + interval '1 hour', 5 FROM (SELECT date_trunc('day', now()) "
            "+ interval '50 days 6 hours' AS t) s RETURNING id",
            world.business_id,
            world.cut,
            world.staff[0],
        )
    return {
        "business_id": str(world.business_id),
        "booking_id": str(message_booking),
        "hold_id": str(hold.json()["hold"]["id"]),
        "staff_id": str(world.staff[0]),
        "service_id": str(world.cut),
        "resource_id": str(resource.json()["id"]),
        "key_id": str(key_id),
        "endpoint_id": str(endpoint_id),
        "delivery_id": str(delivery_id),
        "reference_code": str(by_partner["reference_code"]),
        "customer_id": str(customer_id),
        "feed_id": str(feed_id),
        "connection_id": str(connection_id),
        "session_id": str(session_id),
        "offer_id": str(offer_id),
        "partner_id": str(world.partner_id),
    }


def _fill(template: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        return FIXED.get(name) or values[name]

    return PARAM.sub(one, template)


def _random_like(real: dict[str, str]) -> dict[str, str]:
    fake = {name: str(uuid.uuid4()) for name in real}
    fake["reference_code"] = "ZZZZZZ"
    return fake


# Rows of the world's business that another partner, or another booking's link, may not
# see although they see the business: partner A's booking and hold, its webhook endpoint
# and delivery, a staff key.
PRIVATE_ROWS = {"booking_id", "hold_id", "endpoint_id", "delivery_id", "key_id", "offer_id"}


def _variants(
    label: str, names: set[str], real: dict[str, str], world: World
) -> list[tuple[dict[str, str], dict[str, str]]]:
    """(real ids, random ids) pairs ``label`` must not be able to tell apart."""
    if label == "manager of another business":
        pairs = [(real, _random_like(real))]
        if "business_id" in names and len(names - {"day", "reference_code"}) > 1:
            # Its own business in the path, the other tenant's child id after it.
            own = {**real, "business_id": str(world.other_business_id)}
            pairs.append((own, {**_random_like(real), "business_id": own["business_id"]}))
        return pairs
    if not names & PRIVATE_ROWS:
        return []  # the business's public rows: this caller may see them
    fake = {**_random_like(real), "business_id": real["business_id"]}
    return [(real, fake)]


def _answer(response: httpx.Response, ids: dict[str, str]) -> tuple[Any, ...]:
    """What an outsider sees, with the ids it sent taken out of the text."""
    text = response.text
    for value in ids.values():
        text = text.replace(value, "<id>")
    try:
        body = response.json()
    except ValueError:
        return (response.status_code, text[:300])
    if not isinstance(body, dict):
        return (response.status_code, text[:300])
    detail = str(body.get("detail", ""))
    for value in ids.values():
        detail = detail.replace(value, "<id>")
    return (response.status_code, body.get("type"), body.get("title"), detail)


async def test_every_reference_to_another_tenants_row_answers_like_a_random_id(
    world: World,
) -> None:
    real = await _real_ids(world)
    desk_booking = await book(world, "front_desk", 3, 12, phone="+393339999999")
    callers = {
        "manager of another business": world.keys["other_staff"],
        "another partner": world.keys["partner_b"],
        "another booking's link": booking_link(desk_booking["id"]),
    }
    missing = sorted({m.group(1) for _, p in _operations() for m in PARAM.finditer(p)})
    uncovered = [name for name in missing if name not in real and name not in FIXED]
    assert uncovered == [], uncovered  # every id a path names has a real row here
    differences = []
    checked = 0
    for method, template in _operations():
        names = {m.group(1) for m in PARAM.finditer(template)}
        if names & set(uncovered):
            continue
        body = BODIES.get((method, template), {})
        if body == "move":
            body = {"starts_at": at(3, 15).isoformat()}
        for label, credential in callers.items():
            for values, fake in _variants(label, names, real, world):
                async with httpx.AsyncClient(
                    base_url=world.base_url,
                    headers={"Authorization": f"Bearer {credential}"},
                    timeout=30,
                ) as client:
                    seen = await client.request(method, _fill(template, values), json=body)
                    guessed = await client.request(method, _fill(template, fake), json=body)
                checked += 1
                if _answer(seen, values) != _answer(guessed, fake):
                    differences.append(
                        f"{label}: {method} {template} real={_answer(seen, values)} "
                        f"random={_answer(guessed, fake)}"
                    )
    assert checked > 60
    assert differences == [], "\n".join(differences)
