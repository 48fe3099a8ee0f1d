"""Item 3 / finding 12 of issue 18: webhook signing secrets encrypted at rest, rotatable
per endpoint with an overlap in which both secrets sign.

Deliveries go through the real attempt (booking.webhooks.service.attempt_delivery) to a
local receiver that verifies them with the standardwebhooks library, as a partner would.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from booking import db
from booking.access.service import create_api_key
from booking.outbox.service import handle_event
from booking.settings import Settings
from booking.webhooks import secrets
from booking.webhooks.service import attempt_delivery
from booking.worker import OUTBOX_HANDLERS
from tests.access.helpers import book
from tests.processes import drop_database, fresh_database, minimal_env, run, server_url
from tests.support import World

MIGRATION_ID = "2026-12-02T01:20:00:000000"


@dataclass
class Received:
    url: str = ""
    deliveries: list[tuple[str, dict[str, str]]] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Received]:
    state = Received()

    async def hook(request: web.Request) -> web.Response:
        state.deliveries.append((await request.text(), dict(request.headers)))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/hook"
    yield state
    await runner.cleanup()


def _verifies(secret: str, delivery: tuple[str, dict[str, str]]) -> bool:
    body, headers = delivery
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


async def _deliver_one(world: World, hour: int) -> None:
    booking = await book(world, "partner", 3, hour)
    async with db.connection() as conn:
        outbox_ids = await conn.fetch(
            "SELECT id FROM outbox WHERE aggregate_id = $1 ORDER BY id", UUID(booking["id"])
        )
    delivered = 0
    for row in outbox_ids:
        for job in await handle_event(row["id"], OUTBOX_HANDLERS) or []:
            if job.function == "deliver_webhook":
                result = await attempt_delivery(UUID(job.args[0]))
                assert result.outcome == "delivered", result
                delivered += 1
    assert delivered >= 1


async def _client_for(world: World) -> Any:
    issued = await create_api_key(
        kind="partner",
        partner_id=world.partner_id,
        business_ids=[world.business_id],
        scopes=["webhooks:manage", "bookings:read"],
    )
    return world.client(None, headers={"Authorization": f"Bearer {issued.key}"})


async def test_rotation_overlap_signs_with_both_then_only_the_new(
    world: World, receiver: Received
) -> None:
    client = await _client_for(world)
    created = await client.post(
        "/v1/webhook-endpoints", json={"url": receiver.url, "event_types": ["booking.created"]}
    )
    assert created.status_code == 201, created.text
    old = created.json()["secret"]
    endpoint_id = created.json()["endpoint"]["id"]

    # At rest: a Fernet token that opens to the secret; the plaintext is nowhere in the row.
    async with db.connection() as conn:
        row = await conn.fetchrow("SELECT * FROM webhook_endpoint WHERE id = $1", UUID(endpoint_id))
    assert row is not None
    assert "secret" not in dict(row)
    assert old not in str(dict(row))
    assert secrets.unseal(row["secret_sealed"]) == old

    rotated = await client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret", json={"overlap_hours": 24}
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old
    assert new.startswith("whsec_")
    assert rotated.json()["endpoint"]["previous_secret_expires_at"] is not None
    assert new not in (await client.get(f"/v1/webhook-endpoints/{endpoint_id}")).text

    # During the overlap: two signatures; a receiver with either secret accepts.
    await _deliver_one(world, 10)
    during = receiver.deliveries[-1]
    assert len(during[1]["webhook-signature"].split(" ")) == 2
    assert _verifies(old, during)
    assert _verifies(new, during)

    # After the overlap: only the new secret signs.
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE webhook_endpoint SET previous_secret_expires_at = now() - interval '1 s' "
            "WHERE id = $1",
            UUID(endpoint_id),
        )
    await _deliver_one(world, 11)
    after = receiver.deliveries[-1]
    assert len(after[1]["webhook-signature"].split(" ")) == 1
    assert _verifies(new, after)
    assert not _verifies(old, after)


async def test_rotation_without_overlap_retires_the_old_secret_at_once(
    world: World, receiver: Received
) -> None:
    client = await _client_for(world)
    created = await client.post(
        "/v1/webhook-endpoints", json={"url": receiver.url, "event_types": ["booking.created"]}
    )
    old, endpoint_id = created.json()["secret"], created.json()["endpoint"]["id"]
    rotated = await client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret", json={"overlap_hours": 0}
    )
    new = rotated.json()["secret"]
    await _deliver_one(world, 12)
    assert _verifies(new, receiver.deliveries[-1])
    assert not _verifies(old, receiver.deliveries[-1])
    too_long = await client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret", json={"overlap_hours": 500}
    )
    assert too_long.status_code == 400


async def test_another_partner_cannot_rotate(world: World) -> None:
    client = await _client_for(world)
    created = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/x", "event_types": ["booking.created"]},
    )
    endpoint_id = created.json()["endpoint"]["id"]
    other = await create_api_key(
        kind="partner",
        partner_id=(await _other_partner()),
        business_ids=[world.business_id],
        scopes=["webhooks:manage"],
    )
    answer = await world.client(None, headers={"Authorization": f"Bearer {other.key}"}).post(
        f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret", json={}
    )
    assert answer.status_code == 404


async def _other_partner() -> UUID:
    async with db.connection() as conn:
        partner: UUID = await conn.fetchval("SELECT id FROM partner WHERE name = 'Marketplace B'")
    return partner


def test_encryption_keys_from_the_environment_and_their_rotation() -> None:
    first, second = secrets.Fernet.generate_key(), secrets.Fernet.generate_key()
    before = Settings(encryption_keys=first.decode())
    sealed = secrets.seal("whsec_abc", before)
    # A new key in front: old tokens still open, and reseal moves them to the new key.
    both = Settings(encryption_keys=f"{second.decode()},{first.decode()}")
    assert secrets.unseal(sealed, both) == "whsec_abc"
    moved = secrets.reseal(sealed, both)
    assert secrets.unseal(moved, Settings(encryption_keys=second.decode())) == "whsec_abc"
    with pytest.raises(secrets.SecretUnreadable):
        secrets.unseal(sealed, Settings(encryption_keys=second.decode()))
    # Without BOOKING_ENCRYPTION_KEYS: derived from the secret key (and the previous one).
    derived = secrets.seal("whsec_abc", Settings(secret_key="old-key-0123456789"))
    rotating = Settings(secret_key="new-key-0123456789", previous_secret_key="old-key-0123456789")
    assert secrets.unseal(derived, rotating) == "whsec_abc"


def test_the_migration_encrypts_existing_plaintext_secrets(
    database_url: str, tmp_path: Path
) -> None:
    """``booking migrate`` on a database whose endpoints hold plain secrets (the schema
    before 2026-12-02T01:20): afterwards each is sealed and opens to the same secret with
    the API's keys; backwards restores the plain column."""
    server = server_url(database_url)
    url = fresh_database(server, "booking_secret_migration")
    key = "migration-test-secret-key"
    env = minimal_env(DATABASE_URL=url, REDIS_URL=os.environ["REDIS_URL"], BOOKING_SECRET_KEY=key)
    try:
        assert run(["migrate"], env, tmp_path).returncode == 0
        back = run(["migrate", "--backwards", MIGRATION_ID], env, tmp_path)
        assert back.returncode == 0, back.stdout + back.stderr
        plain = "whsec_" + "P" * 43

        async def seed() -> None:
            conn = await asyncpg.connect(url)
            try:
                partner = await conn.fetchval(
                    "INSERT INTO partner (name) VALUES ('Old') RETURNING id"
                )
                await conn.execute(
                    "INSERT INTO webhook_endpoint (partner_id, url, event_types, secret, "
                    "created_by) VALUES ($1, 'https://p.example/h', '{booking.created}', $2, 'x')",
                    partner,
                    plain,
                )
            finally:
                await conn.close()

        async def column(sql: str) -> Any:
            conn = await asyncpg.connect(url)
            try:
                return await conn.fetchval(sql)
            finally:
                await conn.close()

        asyncio.run(seed())
        forward = run(["migrate"], env, tmp_path)
        assert forward.returncode == 0, forward.stdout + forward.stderr
        sealed = asyncio.run(column("SELECT secret_sealed FROM webhook_endpoint"))
        assert plain not in sealed
        assert secrets.unseal(sealed, Settings(secret_key=key)) == plain
        back = run(["migrate", "--backwards", MIGRATION_ID], env, tmp_path)
        assert back.returncode == 0, back.stdout + back.stderr
        assert asyncio.run(column("SELECT secret FROM webhook_endpoint")) == plain
    finally:
        drop_database(server, "booking_secret_migration")
