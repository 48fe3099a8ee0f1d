"""The catalog API: ETag and If-Match, the audit trail, tenants, and who may do what."""

from __future__ import annotations

from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from booking import db
from tests.catalog.helpers import ok, week
from tests.support import World
from tests.wire.test_times import check_times


def biz(world: World, rest: str = "") -> str:
    return f"/v1/businesses/{world.business_id}{rest}"


@pytest.mark.parametrize(
    ("resource", "change"),
    [
        ("", {"name": "Salone Nuovo", "confirm_within_minutes": 45}),
        ("/staff/{staff}", {"name": "Giulia R."}),
        ("/services/{cut}", {"price_cents": 2500, "currency": "EUR"}),
        ("/staff/{staff}/hours", {"days": [{"weekday": 0, "ranges": []}]}),
    ],
)
async def test_patch_honours_if_match_and_moves_the_etag(
    world: World, resource: str, change: dict[str, Any]
) -> None:
    path = biz(world, resource.format(staff=world.staff[0], cut=world.cut))
    manager = world.client("manager")
    read = await manager.get(path)
    assert read.status_code == 200, read.text
    etag = read.headers["ETag"]
    assert etag == (await manager.get(path)).headers["ETag"]  # stable while unchanged

    stale = await manager.patch(path, json=change, headers={"If-Match": '"0000000000"'})
    assert stale.status_code == 412, stale.text
    assert stale.json()["type"] == "/problems/version-mismatch"
    assert stale.json()["current_etag"] == etag
    assert (await manager.get(path)).json() == read.json()  # nothing changed

    done = await manager.patch(path, json=change, headers={"If-Match": etag})
    assert done.status_code == 200, done.text
    assert done.headers["ETag"] != etag
    again = await manager.get(path)
    assert again.headers["ETag"] == done.headers["ETag"]
    assert again.json() != read.json()
    # The old ETag no longer matches.
    late = await manager.patch(path, json=change, headers={"If-Match": etag})
    assert late.status_code == 412


async def test_exception_put_honours_if_match(world: World) -> None:
    manager = world.client("manager")
    day = (await _future_day(world, 5)).isoformat()
    path = biz(world, f"/staff/{world.staff[1]}/exceptions/{day}")
    # If-Match on nothing fails (RFC 9110), and creates nothing.
    refused = await manager.put(path, json={"closed": True}, headers={"If-Match": '"abc"'})
    assert refused.status_code == 412
    assert (await manager.get(path)).status_code == 404
    created = await manager.put(path, json={"closed": True})
    assert created.status_code == 201, created.text
    etag = created.headers["ETag"]
    assert (await manager.get(path)).headers["ETag"] == etag
    special = {"ranges": [{"opens_at": "14:00", "closes_at": "16:00"}], "note": "late shift"}
    stale = await manager.put(path, json=special, headers={"If-Match": '"abc"'})
    assert stale.status_code == 412
    replaced = await manager.put(path, json=special, headers={"If-Match": etag})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["exception"]["ranges"] == special["ranges"]
    listed = await ok(await manager.get(biz(world, f"/staff/{world.staff[1]}/exceptions")))
    assert [(e["day"], e["closed"]) for e in listed] == [(day, False)]
    removed = await manager.delete(path, headers={"If-Match": replaced.headers["ETag"]})
    assert removed.status_code == 200, removed.text
    assert (await manager.get(path)).status_code == 404


async def _future_day(world: World, days: int) -> Any:
    from tests.support import days_ahead

    return days_ahead(days)


async def test_every_change_is_audited_with_its_actor(world: World) -> None:
    manager = world.client("manager")
    keys = await ok(await world.client("admin").get("/v1/api-keys"))
    manager_key = next(k for k in keys if k.get("role") == "manager" and k["kind"] == "staff"
                       and str(world.business_id) in k["business_ids"])  # fmt: skip
    member = await ok(await manager.post(biz(world, "/staff"), json={"name": "Luca"}), 201)
    await ok(await manager.patch(biz(world, f"/staff/{member['id']}"), json={"name": "Luca B."}))
    await ok(
        await manager.put(biz(world, f"/staff/{member['id']}/hours"), json=week("10:00", "14:00"))
    )
    await ok(await manager.patch(biz(world), json={"slot_step_minutes": 30}))

    trail = await ok(await manager.get(biz(world, "/audit")))
    assert check_times(trail, ZoneInfo("Europe/Rome")) >= len(trail)  # created_at, local
    assert [(e["entity"], e["action"]) for e in trail] == [
        ("business", "changed"),
        ("hours", "changed"),
        ("staff", "changed"),
        ("staff", "created"),
    ]
    assert {(e["actor_type"], e["actor_id"]) for e in trail} == {("staff", manager_key["id"])}
    assert trail[0]["changes"] == {"slot_step_minutes": {"from": 15, "to": 30}}
    assert trail[2]["changes"] == {"name": {"from": "Luca", "to": "Luca B."}}
    only_staff = await ok(
        await manager.get(biz(world, "/audit"), params={"entity_id": member["id"], "limit": 1})
    )
    assert [e["action"] for e in only_staff] == ["changed"]
    # The trail is append-only, whoever writes SQL.
    async with db.connection() as conn:
        with pytest.raises(Exception, match="never changed"):
            await conn.execute("UPDATE catalog_audit SET action = 'forged'")


async def test_tenants_and_roles(world: World) -> None:
    other = world.client("other_staff")  # manager of the other business
    for path in ("", "/staff", f"/staff/{world.staff[0]}", f"/services/{world.cut}",
                 f"/staff/{world.staff[0]}/hours", "/audit"):  # fmt: skip
        answer = await other.get(biz(world, path))
        assert answer.status_code == 404, (path, answer.text)
    patched = await other.patch(biz(world, f"/staff/{world.staff[0]}"), json={"name": "x"})
    assert patched.status_code == 404
    # Another business's ids under this business look like random ids.
    async with db.connection() as conn:
        foreign_staff = await conn.fetchval(
            "SELECT id FROM staff WHERE business_id = $1", world.other_business_id
        )
    manager = world.client("manager")
    for staff_id in (foreign_staff, uuid4()):
        answer = await manager.get(biz(world, f"/staff/{staff_id}"))
        assert answer.status_code == 404
        eligible = await manager.patch(
            biz(world, f"/services/{world.cut}"), json={"staff_ids": [str(staff_id)]}
        )
        assert eligible.status_code == 422, eligible.text
        assert eligible.json()["field"] == "staff_ids"

    made = await manager.post(
        "/v1/businesses", json={"slug": "mine-now", "name": "Mine", "time_zone": "Europe/Rome"}
    )
    assert made.status_code == 403
    front_desk = world.client("front_desk")
    assert (await front_desk.patch(biz(world), json={"name": "Desk"})).status_code == 403
    assert (await front_desk.post(biz(world, "/staff"), json={"name": "New"})).status_code == 403
    partner = world.client("partner")
    refused = await partner.post(
        biz(world, "/services"), json={"name": "x", "duration_minutes": 30}
    )
    assert refused.status_code == 403
    # Partners read a business's rules, not its on-duty phone.
    await ok(await manager.patch(biz(world), json={"on_duty_phone": "+393331112222"}))
    assert (await ok(await manager.get(biz(world))))["on_duty_phone"] == "+393331112222"
    assert (await ok(await partner.get(biz(world))))["on_duty_phone"] is None

    mine = await ok(await manager.get("/v1/businesses"))
    assert [b["id"] for b in mine] == [str(world.business_id)]
    everyone = await ok(await world.client("admin").get("/v1/businesses"))
    assert {b["id"] for b in everyone} == {str(world.business_id), str(world.other_business_id)}


async def test_staff_reactivation_and_service_deactivation(world: World) -> None:
    manager = world.client("manager")
    member = await ok(await manager.post(biz(world, "/staff"), json={"name": "Temp"}), 201)
    path = biz(world, f"/staff/{member['id']}")
    off = await ok(await manager.patch(path, json={"active": False, "reason": "left"}))
    assert off["staff"]["active"] is False
    assert off["stranded"] == []
    back = await ok(await manager.patch(path, json={"active": True}))
    assert back["staff"]["active"] is True
    actions = [e["action"] for e in await ok(await manager.get(biz(world, "/audit")))]
    assert actions[:2] == ["reactivated", "deactivated"]

    gone = await ok(
        await manager.patch(biz(world, f"/services/{world.colour}"), json={"active": False})
    )
    assert gone["service"]["active"] is False
    listed = await ok(await manager.get(biz(world, "/services")))
    assert str(world.colour) not in [s["id"] for s in listed]
    everything = await ok(
        await manager.get(biz(world, "/services"), params={"include_inactive": "true"})
    )
    assert str(world.colour) in [s["id"] for s in everything]
    refused = await world.client("partner").get(
        biz(world, "/availability"),
        params={"service_id": str(world.colour), "from": "2030-01-07T00:00:00+01:00",
                "to": "2030-01-08T00:00:00+01:00"},
    )  # fmt: skip
    assert refused.status_code == 404
