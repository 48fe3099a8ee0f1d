"""Malformed and hostile requests: always a 4xx problem, never a 500, nothing changes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import pytest

from booking import db
from tests.support import World, at


@dataclass
class Case:
    name: str
    method: str
    path: str  # {b} business, {bk} an existing booking
    body: Any = None
    raw: bytes | None = None
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    who: str | None = "front_desk"
    expect: int | None = None


def booking(world: World, **override: Any) -> dict[str, Any]:
    body = world.booking_body(at(3, 10))
    body.update(override)
    return body


def cases(world: World) -> list[Case]:
    b = "/v1/businesses/{b}/bookings"
    good = booking(world)
    customer = good["customer"]
    return [
        Case("truncated json", "POST", b, raw=b'{"service_id": ', expect=400),
        Case("json array", "POST", b, raw=b"[1, 2, 3]", expect=400),
        Case("not json", "POST", b, raw=b"service=cut&when=tomorrow", expect=400),
        Case("empty body", "POST", b, raw=b"", expect=400),
        Case(
            "missing customer",
            "POST",
            b,
            body={k: v for k, v in good.items() if k != "customer"},
            expect=400,
        ),
        Case("unknown field", "POST", b, body={**good, "price": 0}, expect=400),
        Case("date words", "POST", b, body={**good, "starts_at": "tomorrow at ten"}, expect=400),
        Case(
            "naive time", "POST", b, body={**good, "starts_at": "2027-01-05T10:00:00"}, expect=422
        ),
        Case(
            "year 9999",
            "POST",
            b,
            body={**good, "starts_at": "9999-12-31T23:59:00+00:00"},
            expect=422,
        ),
        Case("past", "POST", b, body={**good, "starts_at": at(-3, 10).isoformat()}, expect=422),
        Case(
            "outside hours",
            "POST",
            b,
            body={**good, "starts_at": at(3, 23).isoformat()},
            expect=422,
        ),
        Case("service not uuid", "POST", b, body={**good, "service_id": "cut"}, expect=400),
        Case("unknown service", "POST", b, body={**good, "service_id": str(uuid4())}, expect=404),
        Case(
            "ineligible staff",
            "POST",
            b,
            body={**good, "service_id": str(world.consult), "staff_id": str(world.staff[0])},
            expect=422,
        ),
        Case(
            "bad phone",
            "POST",
            b,
            body={**good, "customer": {**customer, "phone": "12345"}},
            expect=422,
        ),
        Case(
            "empty name", "POST", b, body={**good, "customer": {**customer, "name": ""}}, expect=400
        ),
        Case(
            "blank name",
            "POST",
            b,
            body={**good, "customer": {**customer, "name": "   "}},
            expect=422,
        ),
        Case(
            "huge name",
            "POST",
            b,
            body={**good, "customer": {**customer, "name": "x" * 10_000}},
            expect=400,
        ),
        Case(
            "nul byte",
            "POST",
            b,
            body={**good, "customer": {**customer, "name": "Anna\u0000Ferri"}},
        ),
        Case(
            "bad locale",
            "POST",
            b,
            body={**good, "customer": {**customer, "locale": "xx"}},
            expect=422,
        ),
        Case("bad channel", "POST", b, body={**good, "channel": "pigeon"}, expect=400),
        Case("channel not allowed", "POST", b, body={**good, "channel": "partner"}, expect=422),
        Case(
            "huge number",
            "POST",
            b,
            raw=json.dumps(good).replace('"Anna Ferri"', "1e400").encode(),
            expect=400,
        ),
        Case(
            "unknown business", "POST", f"/v1/businesses/{uuid4()}/bookings", body=good, expect=404
        ),
        Case("other tenant business", "POST", "/v1/businesses/{o}/bookings", body=good, expect=404),
        Case("business not uuid", "POST", "/v1/businesses/salon/bookings", body=good),
        Case("no credentials", "POST", b, body=good, who=None, expect=401),
        Case(
            "bad credentials",
            "POST",
            b,
            body=good,
            who=None,
            headers={"Authorization": "Bearer bk_nope_nope"},
            expect=401,
        ),
        Case(
            "basic auth",
            "POST",
            b,
            body=good,
            who=None,
            headers={"Authorization": "Basic YWRtaW46YWRtaW4="},
            expect=401,
        ),
        Case(
            "availability to before from",
            "GET",
            "/v1/businesses/{b}/availability",
            params={
                "service_id": str(world.cut),
                "from": at(3, 10).isoformat(),
                "to": at(3, 9).isoformat(),
            },
            expect=422,
        ),
        Case(
            "availability too long",
            "GET",
            "/v1/businesses/{b}/availability",
            params={
                "service_id": str(world.cut),
                "from": at(3, 10).isoformat(),
                "to": at(300, 9).isoformat(),
            },
            expect=422,
        ),
        Case(
            "availability missing from",
            "GET",
            "/v1/businesses/{b}/availability",
            params={"service_id": str(world.cut), "to": at(3, 9).isoformat()},
            expect=400,
        ),
        Case(
            "availability naive",
            "GET",
            "/v1/businesses/{b}/availability",
            params={
                "service_id": str(world.cut),
                "from": "2027-01-05T10:00:00",
                "to": "2027-01-06T10:00:00",
            },
            expect=422,
        ),
        Case("list bad cursor", "GET", b, params={"cursor": "!!!not-a-cursor"}, expect=422),
        Case("list limit zero", "GET", b, params={"limit": "0"}, expect=400),
        Case("list bad status", "GET", b, params={"status": "lost"}, expect=422),
        Case("list bad from", "GET", b, params={"from": "yesterday"}, expect=400),
        Case("change nothing", "PATCH", "/v1/bookings/{bk}", body={}, expect=422),
        Case(
            "change bad if-match",
            "PATCH",
            "/v1/bookings/{bk}",
            body={"starts_at": at(3, 12).isoformat()},
            headers={"If-Match": "soon"},
            expect=422,
        ),
        Case(
            "change stale if-match",
            "PATCH",
            "/v1/bookings/{bk}",
            body={"starts_at": at(3, 12).isoformat()},
            headers={"If-Match": '"99"'},
            expect=412,
        ),
        Case(
            "change into the past",
            "PATCH",
            "/v1/bookings/{bk}",
            body={"starts_at": at(-1, 12).isoformat()},
            expect=422,
        ),
        Case(
            "change unknown booking",
            "PATCH",
            f"/v1/bookings/{uuid4()}",
            body={"starts_at": at(3, 12).isoformat()},
            expect=404,
        ),
        Case(
            "cancel reason too long",
            "POST",
            "/v1/bookings/{bk}/cancel",
            body={"reason": "r" * 5000},
            expect=400,
        ),
        Case(
            "confirm hold short token",
            "POST",
            f"/v1/holds/{uuid4()}/confirm",
            body={"hold_token": "x", "customer": customer},
            expect=400,
        ),
        Case(
            "confirm unknown hold",
            "POST",
            f"/v1/holds/{uuid4()}/confirm",
            body={"hold_token": "x" * 20, "customer": customer},
            expect=404,
        ),
        Case("unknown route", "GET", "/v1/nothing-here", expect=404),
        Case("wrong method", "DELETE", "/v1/bookings/{bk}", expect=405),
        Case(
            "rebook unknown code",
            "GET",
            "/v1/businesses/{b}/front-desk/rebooking/%00%00",
            expect=404,
        ),
    ]


async def _counts() -> dict[str, int]:
    async with db.connection() as conn:
        tables = [
            row["tablename"]
            for row in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename NOT IN ('migration', 'idempotency_record', 'idempotency_key')"
            )
        ]
        return {t: await conn.fetchval(f'SELECT count(*) FROM "{t}"') for t in tables}


async def test_bad_requests_get_4xx_problems_and_change_nothing(world: World) -> None:
    existing = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(3, 15), phone="+393330001111"),
    )
    assert existing.status_code == 201
    booking_id = existing.json()["id"]
    before = await _counts()
    failures = []
    for case in cases(world):
        path = (
            case.path.replace("{b}", str(world.business_id))
            .replace("{o}", str(world.other_business_id))
            .replace("{bk}", booking_id)
        )
        client = world.client(case.who, headers=case.headers)
        kwargs: dict[str, Any] = {"params": case.params}
        if case.raw is not None:
            kwargs["content"] = case.raw
            kwargs["headers"] = {"Content-Type": "application/json"}
        elif case.body is not None:
            kwargs["json"] = case.body
        response = await client.request(case.method, path, **kwargs)
        ok = 400 <= response.status_code < 500
        ok = ok and response.headers.get("content-type", "").startswith("application/problem+json")
        if ok:
            problem = response.json()
            ok = problem.get("type", "").startswith("/problems/") and "detail" in problem
            ok = ok and "Traceback" not in response.text
        if case.expect is not None:
            ok = ok and response.status_code == case.expect
        if not ok:
            failures.append(f"{case.name}: {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures)
    assert await _counts() == before


@pytest.mark.parametrize("header", ['W/"1"', '"1"', "*"])
async def test_if_match_forms_are_accepted(world: World, header: str) -> None:
    made = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings", json=world.booking_body(at(3, 16))
    )
    response = await world.client("front_desk").patch(
        f"/v1/bookings/{made.json()['id']}",
        json={"starts_at": at(3, 17).isoformat()},
        headers={"If-Match": header},
    )
    assert response.status_code == 200, response.text
