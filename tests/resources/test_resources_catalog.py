"""Resources and a service's needs follow the catalog's pattern: an ETag that is a hash
of the representation, If-Match honoured (412 when stale), a catalog_audit row per change;
and dated exceptions reference their member of staff in the same business."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import asyncpg
import pytest

from booking import db
from tests.support import World


async def test_resource_etag_if_match_and_audit(world: World) -> None:
    manager = world.client("manager")
    base = f"/v1/businesses/{world.business_id}/resources"
    made = await manager.post(base, json={"kind": "room", "name": "Cabin 1", "group": "cabin"})
    assert made.status_code == 201, made.text
    path = f"{base}/{made.json()['id']}"
    read = await manager.get(path)
    etag = read.headers["ETag"]
    assert etag == made.headers["ETag"] == (await manager.get(path)).headers["ETag"]

    stale = await manager.patch(path, json={"name": "Cabin A"}, headers={"If-Match": '"0ff"'})
    assert stale.status_code == 412, stale.text
    assert stale.headers["content-type"].startswith("application/problem+json")
    assert stale.json()["current_etag"] == etag
    assert (await manager.get(path)).json()["name"] == "Cabin 1"  # nothing changed

    done = await manager.patch(path, json={"name": "Cabin A"}, headers={"If-Match": etag})
    assert done.status_code == 200, done.text
    assert done.headers["ETag"] == (await manager.get(path)).headers["ETag"] != etag
    late = await manager.patch(path, json={"name": "Cabin B"}, headers={"If-Match": etag})
    assert late.status_code == 412
    # Without If-Match the change goes through (optional, as for the catalog).
    off = await manager.patch(path, json={"active": False})
    assert off.status_code == 200, off.text

    audit = await manager.get(
        f"/v1/businesses/{world.business_id}/audit",
        params={"entity": "resource", "entity_id": made.json()["id"]},
    )
    assert audit.status_code == 200, audit.text
    entries = audit.json()
    assert [e["action"] for e in entries] == ["deactivated", "changed", "created"]
    assert entries[1]["changes"] == {"name": {"from": "Cabin 1", "to": "Cabin A"}}
    assert entries[0]["changes"]["active"] == {"from": True, "to": False}
    assert {e["actor_type"] for e in entries} == {"staff"}


async def test_service_needs_etag_if_match_and_audit(world: World) -> None:
    manager = world.client("manager")
    await manager.post(
        f"/v1/businesses/{world.business_id}/resources",
        json={"kind": "room", "name": "Cabin 1", "group": "cabin"},
    )
    path = f"/v1/businesses/{world.business_id}/services/{world.cut}/needs"
    read = await manager.get(path)
    assert read.status_code == 200, read.text
    assert read.json()["resource_group"] is None
    etag = read.headers["ETag"]
    stale = await manager.put(path, json={"resource_group": "cabin"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412, stale.text
    assert (await manager.get(path)).json()["resource_group"] is None
    done = await manager.put(path, json={"resource_group": "cabin"}, headers={"If-Match": etag})
    assert done.status_code == 200, done.text
    assert done.json()["resource_group"] == "cabin"
    assert done.headers["ETag"] == (await manager.get(path)).headers["ETag"] != etag
    again = await manager.put(path, json={"resource_group": None}, headers={"If-Match": etag})
    assert again.status_code == 412
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT action, changes FROM catalog_audit WHERE business_id = $1 "
            "AND entity = 'service' AND entity_id = $2",
            world.business_id,
            world.cut,
        )
    assert [row["action"] for row in rows] == ["needs changed"]
    assert '"resource_group": {"to": "cabin", "from": null}' in rows[0]["changes"]
    missing = await manager.get(
        f"/v1/businesses/{world.business_id}/services/{world.business_id}/needs"
    )
    assert missing.status_code == 404


async def test_dated_exception_must_name_staff_of_the_same_business(world: World) -> None:
    async with db.connection() as conn:
        other_staff = await conn.fetchval(
            "INSERT INTO staff (business_id, name) VALUES ($1, $2) RETURNING id",
            world.other_business_id,
            f"Elsewhere {uuid4()}",
        )
        insert = (
            "INSERT INTO staff_hours_exception (business_id, staff_id, day) VALUES ($1, $2, $3)"
        )
        await conn.execute(insert, world.business_id, world.staff[0], date(2030, 1, 2))
        with pytest.raises(asyncpg.ForeignKeyViolationError) as caught:
            await conn.execute(insert, world.business_id, other_staff, date(2030, 1, 2))
        assert caught.value.constraint_name == "staff_hours_exception_staff_id_fkey"
