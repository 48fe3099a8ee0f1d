"""API keys over HTTP and the CLI: shown once, never listed, revocable, tenant-bound."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx

from tests.support import World


async def test_admin_issues_a_partner_key_shown_once_and_revokes_it(world: World) -> None:
    admin = world.client("admin")
    issued = await admin.post(
        "/v1/api-keys",
        json={
            "kind": "partner",
            "partner_name": "Casa Pulita",
            "business_ids": [str(world.business_id)],
            "scopes": ["availability:read", "bookings:write"],
            "name": "casa-pulita prod",
        },
    )
    assert issued.status_code == 201, issued.text
    body = issued.json()
    secret, key_id = body["key"], body["api_key"]["id"]
    assert secret.startswith("bk_" + body["api_key"]["prefix"])
    assert body["api_key"]["created_by"].startswith("admin:")

    listed = await admin.get("/v1/api-keys")
    assert listed.status_code == 200
    assert secret not in listed.text
    assert "key_hash" not in listed.text
    assert key_id in {item["id"] for item in listed.json()}

    async with httpx.AsyncClient(
        base_url=world.base_url, headers={"Authorization": f"Bearer {secret}"}
    ) as partner:
        assert (await partner.get(f"/v1/businesses/{world.business_id}")).status_code == 200
        revoked = await admin.post(f"/v1/api-keys/{key_id}/revoke")
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None
        again = await admin.post(f"/v1/api-keys/{key_id}/revoke")
        assert again.status_code == 200  # idempotent
        refused = await partner.get(f"/v1/businesses/{world.business_id}")
        assert refused.status_code == 401
        assert refused.json()["type"] == "/problems/unauthenticated"
    assert key_id not in {item["id"] for item in (await admin.get("/v1/api-keys")).json()}
    with_revoked = await admin.get("/v1/api-keys", params={"include_revoked": "true"})
    assert key_id in {item["id"] for item in with_revoked.json()}


async def test_manager_manages_only_staff_and_app_keys_of_their_business(world: World) -> None:
    manager = world.client("manager")
    made = await manager.post(
        "/v1/api-keys",
        json={"kind": "staff", "role": "front_desk", "business_ids": [str(world.business_id)]},
    )
    assert made.status_code == 201, made.text
    listed = (await manager.get("/v1/api-keys")).json()
    kinds = {item["kind"] for item in listed}
    assert kinds <= {"staff", "app"}
    assert all(item["business_ids"] == [str(world.business_id)] for item in listed)
    assert made.json()["api_key"]["id"] in {item["id"] for item in listed}

    partner_key_id = next(
        item["id"]
        for item in (await world.client("admin").get("/v1/api-keys")).json()
        if item["kind"] == "partner"
    )
    assert (await manager.post(f"/v1/api-keys/{partner_key_id}/revoke")).status_code == 404
    other = world.client("other_staff")
    own_id = made.json()["api_key"]["id"]
    assert (await other.post(f"/v1/api-keys/{own_id}/revoke")).status_code == 404
    too_much = await manager.post(
        "/v1/api-keys",
        json={
            "kind": "app",
            "business_ids": [str(world.business_id)],
            "scopes": ["bookings:read_all"],
        },
    )
    assert too_much.status_code == 403
    limited = await manager.post(
        "/v1/api-keys",
        json={"kind": "app", "business_ids": [str(world.business_id)], "rate_limit_per_minute": 5},
    )
    assert limited.status_code == 403
    assert (await manager.post(f"/v1/api-keys/{own_id}/revoke")).status_code == 200


async def test_admin_keys_come_only_from_the_cli(world: World) -> None:
    refused = await world.client("admin").post("/v1/api-keys", json={"kind": "admin"})
    assert refused.status_code == 400  # not a kind the HTTP API knows
    assert refused.headers["content-type"].startswith("application/problem+json")


async def test_cli_creates_and_revokes_keys(world: World) -> None:
    env = dict(os.environ)
    created = subprocess.run(  # noqa: ASYNC221 - the CLI is the thing under test
        [sys.executable, "-m", "booking.cli", "key", "create", "--kind", "staff", "--role",
         "manager", "--business", str(world.business_id)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    issued = json.loads(created.stdout)
    async with httpx.AsyncClient(
        base_url=world.base_url, headers={"Authorization": f"Bearer {issued['key']}"}
    ) as client:
        assert (await client.get("/v1/api-keys")).status_code == 200
    revoked = subprocess.run(  # noqa: ASYNC221
        [sys.executable, "-m", "booking.cli", "key", "revoke", issued["prefix"]],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert revoked.returncode == 0
    assert "revoked" in revoked.stdout
