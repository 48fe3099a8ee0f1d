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
    path: str  # {b} business, {bk} an existing booking, {s} a member of staff
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
        *catalog_cases(world),
    ]


def catalog_cases(world: World) -> list[Case]:
    """The catalog and settings API (managers; businesses are created by admins)."""
    biz, staff = "/v1/businesses/{b}", "/v1/businesses/{b}/staff"
    hours = "/v1/businesses/{b}/staff/{s}/hours"
    services = "/v1/businesses/{b}/services"
    new = {"slug": "new-shop", "name": "New", "time_zone": "America/New_York"}
    service = {"name": "Trim", "duration_minutes": 30, "staff_ids": [str(world.staff[0])]}

    def day(*ranges: tuple[str, str], weekday: int = 0) -> dict[str, Any]:
        spans = [{"opens_at": a, "closes_at": b} for a, b in ranges]
        return {"days": [{"weekday": weekday, "ranges": spans}]}

    def m(name: str, method: str, path: str, body: Any, expect: int, **kw: Any) -> Case:
        who = kw.pop("who", "manager")
        return Case(name, method, path, body=body, who=who, expect=expect, **kw)

    return [
        m("unknown zone", "PATCH", biz, {"time_zone": "Mars/Olympus_Mons"}, 422),
        m("zone path trick", "PATCH", biz, {"time_zone": "../../etc/passwd"}, 422),
        m(
            "create unknown zone",
            "POST",
            "/v1/businesses",
            {**new, "time_zone": "EST5"},
            422,
            who="admin",
        ),
        m(
            "create bad phone",
            "POST",
            "/v1/businesses",
            {**new, "on_duty_phone": "call me"},
            422,
            who="admin",
        ),
        m(
            "create slug taken",
            "POST",
            "/v1/businesses",
            {**new, "slug": "salone-test"},
            409,
            who="admin",
        ),
        m(
            "create bad slug",
            "POST",
            "/v1/businesses",
            {**new, "slug": "No Spaces"},
            400,
            who="admin",
        ),
        m("create by manager", "POST", "/v1/businesses", new, 403),
        m("phone not a phone", "PATCH", biz, {"on_duty_phone": "12345"}, 422),
        m("bad locale", "PATCH", biz, {"locale": "xx"}, 422),
        m("slot step 1", "PATCH", biz, {"slot_step_minutes": 1}, 400),
        m("negative notice", "PATCH", biz, {"min_notice_minutes": -5}, 400),
        m("negative reminder", "PATCH", biz, {"reminder_offsets_minutes": [-60]}, 400),
        m("twice the reminder", "PATCH", biz, {"reminder_offsets_minutes": [60, 60]}, 422),
        m("empty patch", "PATCH", biz, {}, 422),
        m("unknown setting", "PATCH", biz, {"colour": "red"}, 400),
        m("bad if-match", "PATCH", biz, {"name": "X"}, 422, headers={"If-Match": "soon"}),
        m("other tenant patch", "PATCH", "/v1/businesses/{o}", {"name": "Mine"}, 404),
        m("front desk patch", "PATCH", biz, {"name": "Desk"}, 403, who="front_desk"),
        m("blank staff name", "POST", staff, {"name": "   "}, 422),
        m("staff bad phone", "POST", staff, {"name": "Al", "phone": "not-a-phone"}, 422),
        m("unknown staff", "PATCH", f"{staff}/{uuid4()}", {"name": "Al"}, 404),
        m("overlapping ranges", "PUT", hours, day(("09:00", "13:00"), ("12:00", "18:00")), 422),
        m("closes before opens", "PUT", hours, day(("18:00", "09:00")), 422),
        m("hour 25", "PUT", hours, day(("09:00", "25:00")), 400),
        m("weekday 7", "PATCH", hours, day(("09:00", "12:00"), weekday=7), 400),
        m(
            "weekday twice",
            "PUT",
            hours,
            {"days": [*day(("09:00", "12:00"))["days"], *day(("13:00", "14:00"))["days"]]},
            422,
        ),
        m("hours unknown staff", "PUT", f"{staff}/{uuid4()}/hours", day(), 404),
        m(
            "exception closed with ranges",
            "PUT",
            f"{staff}/{{s}}/exceptions/2099-01-05",
            {"closed": True, "ranges": [{"opens_at": "09:00", "closes_at": "10:00"}]},
            422,
        ),
        m("exception empty", "PUT", f"{staff}/{{s}}/exceptions/2099-01-05", {}, 422),
        m("exception past", "PUT", f"{staff}/{{s}}/exceptions/2020-01-06", {"closed": True}, 422),
        m(
            "exception bad date",
            "PUT",
            f"{staff}/{{s}}/exceptions/2026-02-30",
            {"closed": True},
            404,  # no such route: the path parameter is not a date
        ),
        m("negative duration", "POST", services, {**service, "duration_minutes": -30}, 400),
        m("zero duration", "POST", services, {**service, "duration_minutes": 0}, 400),
        m("negative buffer", "POST", services, {**service, "buffer_before_minutes": -5}, 400),
        m("buffer over a day", "POST", services, {**service, "buffer_after_minutes": 1500}, 400),
        m("unknown currency", "POST", services, {**service, "currency": "XYZ"}, 422),
        m("lowercase currency", "POST", services, {**service, "currency": "usd"}, 400),
        m("negative price", "POST", services, {**service, "price_cents": -1}, 400),
        m(
            "unknown eligible staff",
            "POST",
            services,
            {**service, "staff_ids": [str(uuid4())]},
            422,
        ),
        m(
            "eligible staff twice",
            "POST",
            services,
            {**service, "staff_ids": [str(world.staff[0])] * 2},
            422,
        ),
        m("patch unknown service", "PATCH", f"{services}/{uuid4()}", {"name": "X"}, 404),
        m(
            "patch buffer over a day",
            "PATCH",
            f"{services}/{world.cut}",
            {"buffer_before_minutes": 2000},
            400,
        ),
        m(
            "patch staff of other tenant",
            "PATCH",
            f"{services}/{world.cut}",
            {"staff_ids": ["{os}"]},
            422,
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
    async with db.connection() as conn:
        other_staff = str(
            await conn.fetchval(
                "SELECT id FROM staff WHERE business_id = $1", world.other_business_id
            )
        )
    before = await _counts()
    failures = []
    for case in cases(world):
        path = (
            case.path.replace("{b}", str(world.business_id))
            .replace("{o}", str(world.other_business_id))
            .replace("{bk}", booking_id)
            .replace("{s}", str(world.staff[0]))
        )
        client = world.client(case.who, headers=case.headers)
        kwargs: dict[str, Any] = {"params": case.params}
        if case.raw is not None:
            kwargs["content"] = case.raw
            kwargs["headers"] = {"Content-Type": "application/json"}
        elif case.body is not None:
            kwargs["json"] = json.loads(json.dumps(case.body).replace("{os}", other_staff))
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
