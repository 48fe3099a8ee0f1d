"""Reminders are rows: scheduled per business offsets, moved with the booking, drained by cron."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from arq.connections import ArqRedis

from booking import db
from tests.notifications.fixtures import Pipeline, messages, reminders
from tests.notifications.test_pipeline import book
from tests.support import World, at


def scheduled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] == "scheduled"]


async def test_new_booking_gets_reminders_24h_and_2h_before(
    world: World, pipeline: Pipeline
) -> None:
    booking = await book(world, days=3, hour=10)
    await pipeline.run_worker()

    rows = await reminders(UUID(booking["id"]))
    starts = datetime.fromisoformat(booking["starts_at"])
    assert sorted((r["offset_minutes"], r["due_at"]) for r in rows) == [
        (120, starts - timedelta(hours=2)),
        (1440, starts - timedelta(hours=24)),
    ]
    assert {r["status"] for r in rows} == {"scheduled"}


async def test_change_sends_notice_cancels_old_reminders_and_schedules_new(
    world: World, pipeline: Pipeline
) -> None:
    booking = await book(world, days=3, hour=10)
    await pipeline.run_worker()
    new_start = at(4, 15)

    response = await world.client("front_desk").patch(
        f"/v1/bookings/{booking['id']}", json={"starts_at": new_start.isoformat()}
    )
    assert response.status_code == 200, response.text
    await pipeline.run_worker()

    sent = await messages(UUID(booking["id"]))
    assert [m["template"] for m in sent] == ["booking_confirmed", "booking_changed"]
    assert "spostata a " in sent[1]["body"]
    assert " alle 15:00 " in sent[1]["body"]
    assert len(pipeline.fake.accepted) == 2
    rows = await reminders(UUID(booking["id"]))
    old = [r for r in rows if r["booking_starts_at"] != new_start]
    assert len(old) == 2
    assert {r["status"] for r in old} == {"cancelled"}
    new = scheduled(rows)
    assert sorted(r["due_at"] for r in new) == [
        new_start - timedelta(hours=24),
        new_start - timedelta(hours=2),
    ]


async def test_cancelled_booking_gets_notice_and_no_reminders(
    world: World, pipeline: Pipeline
) -> None:
    booking = await book(world, days=3, hour=10)
    await pipeline.run_worker()

    response = await world.client("front_desk").post(f"/v1/bookings/{booking['id']}/cancel")
    assert response.status_code == 200, response.text
    await pipeline.run_worker()

    assert [m["template"] for m in await messages(UUID(booking["id"]))] == [
        "booking_confirmed",
        "booking_cancelled",
    ]
    assert scheduled(await reminders(UUID(booking["id"]))) == []


async def test_no_reminder_whose_due_time_has_passed(world: World, pipeline: Pipeline) -> None:
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    soon = soon.replace(minute=0, second=0) + timedelta(hours=1)
    local_hour = soon.astimezone(at(0, 0).tzinfo).hour
    if not 9 <= local_hour <= 17:
        # Outside working hours: make the business open around the clock for this test.
        async with db.connection() as conn:
            await conn.execute("UPDATE working_hours SET opens_at = '00:00', closes_at = '23:59'")
    response = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(soon),
    )
    assert response.status_code == 201, response.text
    await pipeline.run_worker()

    rows = await reminders(UUID(response.json()["id"]))
    assert [r["offset_minutes"] for r in rows] == [120]  # 24 h before is already gone


async def test_due_reminder_is_sent_once_and_stale_ones_are_not(
    world: World, pipeline: Pipeline
) -> None:
    booking = await book(world, days=3, hour=10)
    other = await book(world, days=3, hour=12)
    await pipeline.run_worker()
    async with db.connection() as conn:
        # Time passes: the 24 h reminders fall due.
        await conn.execute(
            "UPDATE reminder SET due_at = now() - interval '1 minute' WHERE offset_minutes = 1440"
        )
        # The other booking was cancelled behind the worker's back (no event handled yet).
        await conn.execute(
            "UPDATE booking SET status = 'cancelled' WHERE id = $1", UUID(other["id"])
        )

    await pipeline.run_worker()
    await pipeline.run_worker()

    reminder_sms = [r for r in pipeline.fake.accepted if "promemoria" in r.body]
    assert len(reminder_sms) == 1
    assert booking["reference_code"] not in reminder_sms[0].body  # reminders name no code
    rows = await reminders(UUID(booking["id"]))
    [done] = [r for r in rows if r["offset_minutes"] == 1440]
    assert done["status"] == "sent"
    assert done["message_id"] is not None
    [stale] = [r for r in await reminders(UUID(other["id"])) if r["offset_minutes"] == 1440]
    assert stale["status"] == "cancelled"


async def test_business_offsets_are_used(world: World, pipeline: Pipeline) -> None:
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE business SET reminder_offsets_minutes = '{2880,60,60}' WHERE id = $1",
            world.business_id,
        )
    booking = await book(world, days=3, hour=10)
    await pipeline.run_worker()

    rows = await reminders(UUID(booking["id"]))
    assert sorted(r["offset_minutes"] for r in rows) == [60, 2880]


async def test_one_relay_pass_syncs_every_booking_s_reminders_in_one_statement(
    world: World, redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay writes the reminders of all its pass's bookings together, before it
    commits: a booking made and moved in the same pass has reminders for its new time
    only, one made and cancelled none, the others theirs."""
    from booking.notifications.reminders import sync_reminders_of
    from booking.outbox.service import relay_outbox
    from booking.worker import OUTBOX_HANDLERS

    kept = await book(world, days=3, hour=10)
    moved = await book(world, days=4, hour=10)
    gone = await book(world, days=5, hour=10)
    new_start = at(6, 15)
    desk = world.client("front_desk")
    response = await desk.patch(
        f"/v1/bookings/{moved['id']}", json={"starts_at": new_start.isoformat()}
    )
    assert response.status_code == 200, response.text
    response = await desk.post(f"/v1/bookings/{gone['id']}/cancel")
    assert response.status_code == 200, response.text
    flushed: list[list[UUID]] = []

    async def counted(conn: Any, ids: list[UUID]) -> None:
        flushed.append(list(ids))
        await sync_reminders_of(conn, ids)

    monkeypatch.setattr("booking.notifications.service.sync_reminders_of", counted)
    result = await relay_outbox(redis, OUTBOX_HANDLERS)

    assert (result.handled, result.failed) == (5, 0)
    assert len(flushed) == 1  # one call for the pass's five events
    assert sorted(set(flushed[0])) == sorted(UUID(b["id"]) for b in (kept, moved, gone))
    starts = datetime.fromisoformat(kept["starts_at"])
    assert sorted(r["due_at"] for r in scheduled(await reminders(UUID(kept["id"])))) == [
        starts - timedelta(hours=24),
        starts - timedelta(hours=2),
    ]
    assert sorted(r["due_at"] for r in scheduled(await reminders(UUID(moved["id"])))) == [
        new_start - timedelta(hours=24),
        new_start - timedelta(hours=2),
    ]
    assert scheduled(await reminders(UUID(gone["id"]))) == []
