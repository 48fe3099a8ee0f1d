"""Partner webhooks: signed (Standard Webhooks), via the outbox, retried, logged, disabled."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from aiohttp import web
from arq import create_pool
from arq.connections import RedisSettings
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from booking import db
from booking.access.service import create_api_key
from booking.outbox.service import handle_event
from booking.settings import Settings, get_settings
from booking.webhooks.jobs import deliver_webhook
from booking.webhooks.service import BACKOFF, MAX_ATTEMPTS
from booking.worker import OUTBOX_HANDLERS, build_worker
from tests.access.helpers import book
from tests.support import World

ALL_EVENTS = ["booking.created", "booking.cancelled", "booking.changed", "message.delivered"]


@dataclass
class Receiver:
    url: str
    secrets: dict[str, str] = field(default_factory=dict)  # path -> signing secret
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    fail_with: int | None = None


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver(url="")

    async def hook(request: web.Request) -> web.Response:
        body = await request.text()
        name = request.match_info["name"]
        try:
            event = Webhook(state.secrets[name]).verify(body, dict(request.headers))
        except (WebhookVerificationError, KeyError) as exc:
            state.rejected.append(f"{name}: {exc}")
            return web.Response(status=400)
        if state.fail_with:
            return web.Response(status=state.fail_with, text="down for maintenance")
        assert request.headers["webhook-id"].startswith("msg_")
        state.received.append((name, event))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks/{name}", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/hooks"
    yield state
    await runner.cleanup()


async def _webhook_key(world: World, partner: UUID) -> str:
    issued = await create_api_key(
        kind="partner",
        partner_id=partner,
        business_ids=[world.business_id],
        scopes=["webhooks:manage", "bookings:read"],
    )
    return issued.key


async def _register(world: World, receiver: Receiver, key: str, name: str) -> str:
    client = world.client(None, headers={"Authorization": f"Bearer {key}"})
    answer = await client.post(
        "/v1/webhook-endpoints", json={"url": f"{receiver.url}/{name}", "event_types": ALL_EVENTS}
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["secret"].startswith("whsec_")
    receiver.secrets[name] = body["secret"]
    listed = await client.get("/v1/webhook-endpoints")
    assert body["secret"] not in listed.text
    endpoint_id: str = body["endpoint"]["id"]
    return endpoint_id


async def _partner_b(world: World) -> UUID:
    async with db.connection() as conn:
        partner: UUID = await conn.fetchval("SELECT id FROM partner WHERE name = 'Marketplace B'")
    return partner


async def _outbox_ids(booking_id: str) -> list[int]:
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT id FROM outbox WHERE aggregate_id = $1 ORDER BY id", UUID(booking_id)
        )
    return [row["id"] for row in rows]


async def _delivery(delivery_id: str) -> dict[str, Any]:
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT d.*, e.disabled_at FROM webhook_delivery d "
            "JOIN webhook_endpoint e ON e.id = d.endpoint_id WHERE d.id = $1",
            UUID(delivery_id),
        )
    assert row is not None
    return dict(row)


async def _dispatch(booking_id: str) -> list[str]:
    """What the relay's handle_outbox_event does, for each of the booking's outbox rows."""
    ids: list[str] = []
    for outbox_id in await _outbox_ids(booking_id):
        jobs = await handle_event(outbox_id, OUTBOX_HANDLERS) or []
        ids += [job.args[0] for job in jobs if job.function == "deliver_webhook"]
    return ids


async def test_end_to_end_through_outbox_relay_and_worker(world: World, receiver: Receiver) -> None:
    await _register(world, receiver, await _webhook_key(world, world.partner_id), "a")
    await _register(world, receiver, await _webhook_key(world, await _partner_b(world)), "b")
    mine = await book(world, "partner", 3, 10)
    await book(world, "front_desk", 3, 11, phone="+393339999999")  # partner A may not see it

    redis = await create_pool(RedisSettings.from_dsn(os.environ["REDIS_URL"]))
    await redis.flushdb()
    await redis.aclose()
    settings = Settings.from_env()
    worker = build_worker(
        settings,
        burst=True,
        poll_delay=0,
        handle_signals=False,
        ctx={"settings": settings, "outbox_poll_interval": 0},
    )
    try:
        await worker.async_run()
    finally:
        await worker.close()

    assert receiver.rejected == []
    assert [(name, event["type"]) for name, event in receiver.received] == [
        ("a", "booking.created")
    ]
    data = receiver.received[0][1]["data"]
    assert data["booking_id"] == mine["id"]
    assert data["reference_code"] == mine["reference_code"]
    assert data["business_id"] == str(world.business_id)


async def test_dispatch_twice_makes_one_delivery(world: World, receiver: Receiver) -> None:
    await _register(world, receiver, await _webhook_key(world, world.partner_id), "a")
    mine = await book(world, "partner", 3, 10)
    first, second = await _dispatch(mine["id"]), await _dispatch(mine["id"])
    assert len(first) == 1
    assert first == second
    assert await deliver_webhook({}, first[0]) == "delivered"
    assert await deliver_webhook({}, first[0]) == "skipped"  # a rerun sends nothing twice
    assert len(receiver.received) == 1


async def test_message_events_reach_the_partner(world: World, receiver: Receiver) -> None:
    await _register(world, receiver, await _webhook_key(world, world.partner_id), "a")
    mine = await book(world, "partner", 3, 10)
    async with db.transaction() as conn:
        outbox_id = await conn.fetchval(
            "INSERT INTO outbox (business_id, topic, aggregate_id, payload) "
            "VALUES ($1, 'message.delivered', $2, $3::jsonb) RETURNING id",
            world.business_id,
            UUID(mine["id"]),
            json.dumps({"booking_id": mine["id"], "message_id": "m-1"}),
        )
    jobs = await handle_event(outbox_id, OUTBOX_HANDLERS) or []
    (job,) = [job for job in jobs if job.function == "deliver_webhook"]
    assert await deliver_webhook({}, job.args[0]) == "delivered"
    (_, event), *_ = receiver.received
    assert event["type"] == "message.delivered"
    assert event["data"]["message_id"] == "m-1"


async def _make_due(delivery_id: str, **columns: Any) -> None:
    sets = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(columns))
    async with db.transaction() as conn:
        await conn.execute(
            f"UPDATE webhook_delivery SET next_attempt_at = now() - interval '1 second'"
            f"{', ' + sets if sets else ''} WHERE id = $1",
            UUID(delivery_id),
            *columns.values(),
        )


async def test_backoff_schedule_disabling_log_and_redelivery(
    world: World, receiver: Receiver
) -> None:
    key = await _webhook_key(world, world.partner_id)
    endpoint_id = await _register(world, receiver, key, "a")
    client = world.client(None, headers={"Authorization": f"Bearer {key}"})
    mine = await book(world, "partner", 3, 10)
    (delivery_id,) = await _dispatch(mine["id"])
    receiver.fail_with = 503

    assert await deliver_webhook({}, delivery_id) == "retry"
    row = await _delivery(delivery_id)
    assert row["attempts"] == 1
    assert row["last_status_code"] == 503
    assert row["next_attempt_at"] - row["last_attempt_at"] == BACKOFF[0] == timedelta(seconds=30)
    assert await deliver_webhook({}, delivery_id) == "skipped"  # not due yet

    await _make_due(delivery_id, attempts=3)
    assert await deliver_webhook({}, delivery_id) == "retry"
    row = await _delivery(delivery_id)
    assert row["next_attempt_at"] - row["last_attempt_at"] == timedelta(hours=1)

    # The last attempt fails the delivery; the endpoint failed only minutes: stays enabled.
    await _make_due(delivery_id, attempts=MAX_ATTEMPTS - 1)
    assert await deliver_webhook({}, delivery_id) == "failed"
    row = await _delivery(delivery_id)
    assert row["status"] == "failed"
    assert row["next_attempt_at"] is None
    assert row["disabled_at"] is None

    # Failing for 13 hours and another delivery exhausted: the endpoint is disabled.
    cancelled = await world.client("partner").post(f"/v1/bookings/{mine['id']}/cancel", json={})
    assert cancelled.status_code == 200
    second = [d for d in await _dispatch(mine["id"]) if d != delivery_id]
    (second_id,) = second
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE webhook_endpoint SET failing_since = now() - interval '13 hours'"
        )
    await _make_due(second_id, attempts=MAX_ATTEMPTS - 1)
    assert await deliver_webhook({}, second_id) == "failed"
    assert (await _delivery(second_id))["disabled_at"] is not None
    shown = (await client.get(f"/v1/webhook-endpoints/{endpoint_id}")).json()
    assert shown["disabled_at"] is not None
    assert "failed" in shown["disabled_reason"]

    log = await client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries")
    assert log.status_code == 200
    by_id = {item["id"]: item for item in log.json()}
    assert by_id[delivery_id]["status"] == "failed"
    assert [a["status_code"] for a in by_id[delivery_id]["attempt_log"]] == [503, 503, 503]
    # The log keeps a status and a short error class, never the receiver's reply body.
    assert [a["error"] for a in by_id[delivery_id]["attempt_log"]] == ["http-503"] * 3
    assert by_id[delivery_id]["last_error"] == "http-503"
    assert "maintenance" not in log.text

    refused = await client.post(f"/v1/webhook-deliveries/{delivery_id}/redeliver")
    assert refused.status_code == 409
    assert (await client.post(f"/v1/webhook-endpoints/{endpoint_id}/enable")).status_code == 200
    receiver.fail_with = None
    again = await client.post(f"/v1/webhook-deliveries/{delivery_id}/redeliver")
    assert again.status_code == 202
    assert again.json()["status"] == "pending"
    assert await deliver_webhook({}, delivery_id) == "delivered"
    assert (await _delivery(delivery_id))["status"] == "succeeded"
    assert receiver.rejected == []
    assert [event["type"] for _, event in receiver.received] == ["booking.created"]

    other = world.client("partner_b")
    assert (await other.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries")).status_code == 403
    other_key = await _webhook_key(world, await _partner_b(world))
    stranger = world.client(None, headers={"Authorization": f"Bearer {other_key}"})
    assert (await stranger.get(f"/v1/webhook-endpoints/{endpoint_id}")).status_code == 404
    assert (
        await stranger.post(f"/v1/webhook-deliveries/{delivery_id}/redeliver")
    ).status_code == 404
    assert (await client.delete(f"/v1/webhook-endpoints/{endpoint_id}")).status_code == 204
    assert (await client.get(f"/v1/webhook-endpoints/{endpoint_id}")).status_code == 404


async def test_signature_verifies_only_with_the_right_secret(
    world: World, receiver: Receiver
) -> None:
    await _register(world, receiver, await _webhook_key(world, world.partner_id), "a")
    receiver.secrets["a"] = "whsec_" + "A" * 43  # the receiver now holds the wrong secret
    mine = await book(world, "partner", 3, 10)
    (delivery_id,) = await _dispatch(mine["id"])
    assert await deliver_webhook({}, delivery_id) == "retry"
    assert receiver.received == []
    assert len(receiver.rejected) == 1


async def test_delivery_rechecks_the_url_when_connecting(
    world: World, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An endpoint registered while loopback was allowed (or resolved elsewhere then) is
    refused by the worker once the policy refuses its address: nothing reaches it."""
    key = await _webhook_key(world, world.partner_id)
    await _register(world, receiver, key, "a")
    mine = await book(world, "partner", 3, 10)
    (delivery_id,) = await _dispatch(mine["id"])
    monkeypatch.setenv("BOOKING_OUTBOUND_ALLOW_PRIVATE", "0")
    get_settings.cache_clear()
    try:
        assert await deliver_webhook({}, delivery_id) == "retry"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    row = await _delivery(delivery_id)
    assert (row["last_status_code"], row["last_error"]) == (None, "refused-address")
    assert receiver.received == []
    assert receiver.rejected == []
    await _make_due(delivery_id)
    assert await deliver_webhook({}, delivery_id) == "delivered"  # allowed again: delivered
    assert len(receiver.received) == 1
