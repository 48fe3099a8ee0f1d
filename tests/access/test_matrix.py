"""Authorization matrix: every route is closed by default, and who may do what."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from litestar.routes import HTTPRoute

from booking import db
from booking.access.guards import is_public
from booking.app import create_app
from tests.access.helpers import book, booking_link
from tests.support import World, at

# Paths that may answer without credentials: the landing page, operations, the OpenAPI
# document and the docs page with its assets, Twilio's signed webhooks and public customer
# pages (which carry their own token), calendar feeds (the URL is the feed's secret), and
# the staff consoles with their static files (the
# session cookie is their credential: tests/console/test_console_routes.py checks every route).
# /metrics takes no API key: its own operator check (a token, or loopback) guards it
# (tests/telemetry/test_metrics.py).
# actions-center/v3: the marketplace protocol's own credential (HTTP Basic, a partner key
# as the password), checked by every handler; the 401 walk below holds them to it.
PUBLIC_ALLOWED = re.compile(
    r"^/(|health|ready|metrics|schema(/.*)?|v1/twilio/.*|v1/public/.*|b/.*|desk(/.*)?"
    r"|console/static/.*|feeds/.*|actions-center/v3/.*)$"
)


def _concrete(path: str) -> str:
    def fill(match: re.Match[str]) -> str:
        kind = match.group(2)
        if kind == "date":
            return "2030-01-07"
        return str(uuid.uuid4()) if kind == "uuid" else ("1" if kind == "int" else "ABC123")

    return re.sub(r"\{(\w+):(\w+)\}", fill, path)


def _all_operations() -> list[tuple[str, str, bool]]:
    """(method, concrete path, declared public) for every HTTP route of the real app."""
    operations = []
    for route in create_app().routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                operations.append((method, _concrete(route.path), is_public(handler)))
    return operations


def test_only_allowed_paths_are_declared_public() -> None:
    operations = _all_operations()
    assert len(operations) > 20
    public = [(method, path) for method, path, declared in operations if declared]
    assert {path for _, path in public} >= {"/health", "/ready"}
    offenders = [(m, p) for m, p in public if not PUBLIC_ALLOWED.match(p)]
    assert offenders == [], f"routes declared public outside the allow-list: {offenders}"


async def test_every_route_answers_401_without_or_with_a_bad_credential(world: World) -> None:
    revoked = world.client("partner")
    async with db.transaction() as conn:
        await conn.execute("UPDATE api_key SET revoked_at = now() WHERE kind = 'partner'")
    from booking.access.service import clear_cache

    clear_cache()
    credentials: dict[str, dict[str, str]] = {
        "none": {},
        "invalid key": {"Authorization": "Bearer bk_000000000000_nope"},
        "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
        "forged link": {"Authorization": "Bearer bt.00000000000000000000000000000000.9.x"},
        "revoked key": dict(revoked.headers),
    }
    failures = []
    checked = 0
    async with httpx.AsyncClient(base_url=world.base_url, timeout=30) as client:
        for method, path, declared_public in _all_operations():
            for label, headers in credentials.items():
                response = await client.request(method, path, headers=headers, json={})
                checked += 1
                if declared_public:
                    if label == "none" and path.startswith("/v1/") and response.is_success:
                        failures.append(f"{method} {path} public /v1 route answered 2xx")
                    continue
                if response.status_code != 401 or not response.headers.get(
                    "content-type", ""
                ).startswith("application/problem+json"):
                    failures.append(f"{method} {path} [{label}] -> {response.status_code}")
    assert checked > 100
    assert failures == []


async def _matrix_world(world: World) -> dict[str, Any]:
    by_partner = await book(world, "partner", 3, 10)
    by_desk = await book(world, "front_desk", 3, 11, phone="+393339999999")
    return {
        "biz": world.business_id,
        "other": world.other_business_id,
        "mine": by_partner["id"],
        "desk": by_desk["id"],
        "link_mine": booking_link(by_partner["id"]),
        "link_desk": booking_link(by_desk["id"]),
    }


# (caller, method, path template, body, expected status)
MATRIX: list[tuple[str, str, str, Any, int]] = [
    # the business profile: anyone of the tenant; another tenant's business is "missing"
    ("front_desk", "GET", "/v1/businesses/{biz}", None, 200),
    ("partner_readonly", "GET", "/v1/businesses/{biz}", None, 200),
    ("app", "GET", "/v1/businesses/{biz}", None, 200),
    ("other_staff", "GET", "/v1/businesses/{biz}", None, 404),
    ("partner", "GET", "/v1/businesses/{other}", None, 404),
    ("front_desk", "GET", "/v1/businesses/{other}/services", None, 404),
    # the catalog: managers change their own business, admins any; only admins create one
    ("manager", "PATCH", "/v1/businesses/{biz}", {"address": "Via Roma 1"}, 200),
    ("front_desk", "PATCH", "/v1/businesses/{biz}", {"address": "Via Roma 2"}, 403),
    ("other_staff", "PATCH", "/v1/businesses/{biz}", {"address": "Via Roma 3"}, 404),
    ("partner", "POST", "/v1/businesses/{biz}/staff", {"name": "Nuovo"}, 403),
    ("link_mine", "GET", "/v1/businesses/{biz}/staff/{staff0}/hours", None, 403),
    ("front_desk", "GET", "/v1/businesses/{biz}/audit", None, 403),
    ("manager", "GET", "/v1/businesses/{biz}/audit", None, 200),
    ("manager", "POST", "/v1/businesses", {"slug": "x-y", "name": "X", "time_zone": "UTC"}, 403),
    ("admin", "POST", "/v1/businesses", {"slug": "x-y", "name": "X", "time_zone": "UTC"}, 201),
    # availability needs availability:read; a booking link cannot search
    (
        "partner_readonly",
        "GET",
        "/v1/businesses/{biz}/availability?service_id={cut}&from={f}&to={t}",
        None,
        200,
    ),
    (
        "link_mine",
        "GET",
        "/v1/businesses/{biz}/availability?service_id={cut}&from={f}&to={t}",
        None,
        403,
    ),
    (
        "other_staff",
        "GET",
        "/v1/businesses/{biz}/availability?service_id={cut}&from={f}&to={t}",
        None,
        404,
    ),
    # lists: apps never list; links cannot list
    ("front_desk", "GET", "/v1/businesses/{biz}/bookings", None, 200),
    ("partner", "GET", "/v1/businesses/{biz}/bookings", None, 200),
    ("app", "GET", "/v1/businesses/{biz}/bookings", None, 403),  # lacks bookings:read
    ("link_mine", "GET", "/v1/businesses/{biz}/bookings", None, 403),
    ("other_staff", "GET", "/v1/businesses/{biz}/bookings", None, 404),
    # one booking: a partner sees only what it made; a link only its booking
    ("partner", "GET", "/v1/bookings/{mine}", None, 200),
    ("partner_readonly", "GET", "/v1/bookings/{mine}", None, 200),
    ("partner", "GET", "/v1/bookings/{desk}", None, 404),
    ("partner_b", "GET", "/v1/bookings/{mine}", None, 404),
    ("app", "GET", "/v1/bookings/{mine}", None, 404),
    ("other_staff", "GET", "/v1/bookings/{mine}", None, 404),
    ("front_desk", "GET", "/v1/bookings/{mine}", None, 200),
    ("link_mine", "GET", "/v1/bookings/{mine}", None, 200),
    ("link_mine", "GET", "/v1/bookings/{desk}", None, 404),
    ("link_mine", "GET", "/v1/bookings/{mine}/history", None, 200),
    # the journey: the same rule as the booking
    ("partner", "GET", "/v1/bookings/{mine}/journey", None, 200),
    ("partner", "GET", "/v1/bookings/{desk}/journey", None, 404),
    ("partner_b", "GET", "/v1/bookings/{mine}/journey", None, 404),
    ("app", "GET", "/v1/bookings/{mine}/journey", None, 404),
    ("other_staff", "GET", "/v1/bookings/{mine}/journey", None, 404),
    ("front_desk", "GET", "/v1/bookings/{desk}/journey", None, 200),
    ("link_mine", "GET", "/v1/bookings/{mine}/journey", None, 200),
    ("link_mine", "GET", "/v1/bookings/{desk}/journey", None, 404),
    # writing needs the scope; confirming is the business's job
    ("partner_readonly", "POST", "/v1/businesses/{biz}/holds", "hold", 403),
    ("link_mine", "POST", "/v1/businesses/{biz}/holds", "hold", 403),
    ("other_staff", "POST", "/v1/businesses/{biz}/holds", "hold", 404),
    ("app", "POST", "/v1/businesses/{biz}/holds", "hold", 201),
    ("partner_readonly", "POST", "/v1/bookings/{mine}/cancel", {}, 403),
    ("partner", "POST", "/v1/bookings/{mine}/confirm", {}, 403),
    ("partner_b", "POST", "/v1/bookings/{mine}/cancel", {}, 404),
    ("partner_readonly", "PATCH", "/v1/bookings/{mine}", {"starts_at": "{later}"}, 403),
    ("link_desk", "PATCH", "/v1/bookings/{mine}", {"starts_at": "{later}"}, 404),
    ("front_desk", "GET", "/v1/businesses/{biz}/front-desk/rebooking/XXXXXX", None, 404),
    ("partner_readonly", "GET", "/v1/businesses/{biz}/front-desk/rebooking/XXXXXX", None, 403),
    # key management: admins and managers only
    ("front_desk", "GET", "/v1/api-keys", None, 403),
    ("partner", "GET", "/v1/api-keys", None, 403),
    ("link_mine", "GET", "/v1/api-keys", None, 403),
    ("manager", "GET", "/v1/api-keys", None, 200),
    ("admin", "GET", "/v1/api-keys", None, 200),
    ("partner", "POST", "/v1/api-keys", {"kind": "app", "business_ids": ["{biz}"]}, 403),
    (
        "manager",
        "POST",
        "/v1/api-keys",
        {"kind": "partner", "partner_name": "X", "business_ids": ["{biz}"]},
        403,
    ),
    ("manager", "POST", "/v1/api-keys", {"kind": "app", "business_ids": ["{other}"]}, 404),
    ("manager", "POST", "/v1/api-keys", {"kind": "app", "business_ids": ["{biz}"]}, 201),
    # webhooks: partner keys with webhooks:manage only
    ("partner", "GET", "/v1/webhook-endpoints", None, 403),
    ("front_desk", "GET", "/v1/webhook-endpoints", None, 403),
    (
        "admin",
        "POST",
        "/v1/webhook-endpoints",
        {"url": "https://x.example", "event_types": ["booking.created"]},
        403,
    ),
]


def _fill(template: Any, values: dict[str, Any]) -> Any:
    if isinstance(template, str):
        for name, value in values.items():
            template = template.replace("{" + name + "}", str(value))
        return template
    if isinstance(template, list):
        return [_fill(item, values) for item in template]
    if isinstance(template, dict):
        return {key: _fill(item, values) for key, item in template.items()}
    return template


async def test_principal_endpoint_matrix(world: World) -> None:
    values = await _matrix_world(world)
    values.update(
        cut=world.cut,
        staff0=world.staff[0],
        f=at(4, 0).isoformat().replace("+", "%2B"),
        t=at(5, 0).isoformat().replace("+", "%2B"),
        later=at(3, 15).isoformat(),
    )
    failures = []
    hour = 9
    for who, method, template, body, expected in MATRIX:
        if who.startswith("link_"):
            headers = {"Authorization": f"Bearer {values[who]}"}
        else:
            headers = {"Authorization": f"Bearer {world.keys[who]}"}
        if body == "hold":
            hour += 1
            body = {"service_id": str(world.cut), "starts_at": at(6, hour).isoformat()}
        async with httpx.AsyncClient(base_url=world.base_url, headers=headers) as client:
            response = await client.request(
                method, _fill(template, values), json=_fill(body, values)
            )
        if response.status_code != expected:
            failures.append(
                f"{who} {method} {template}: {response.status_code} != {expected} "
                f"{response.text[:160]}"
            )
        elif expected >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
    assert failures == [], "\n".join(failures)


async def test_partner_lists_only_its_own_bookings_unless_read_all(world: World) -> None:
    from booking.access.service import create_api_key

    values = await _matrix_world(world)
    path = f"/v1/businesses/{world.business_id}/bookings"
    own = (await world.client("partner").get(path)).json()["items"]
    assert [item["id"] for item in own] == [values["mine"]]
    assert (await world.client("partner_b").get(path)).json()["items"] == []
    read_all = await create_api_key(
        kind="partner",
        partner_id=world.partner_id,
        business_ids=[world.business_id],
        scopes=["bookings:read", "bookings:read_all"],
    )
    async with httpx.AsyncClient(
        base_url=world.base_url, headers={"Authorization": f"Bearer {read_all.key}"}
    ) as client:
        everything = (await client.get(path)).json()["items"]
        assert {item["id"] for item in everything} == {values["mine"], values["desk"]}
        assert (await client.get(f"/v1/bookings/{values['desk']}")).status_code == 200
