"""The API remembers a service's booking rules between requests (one statement per
booking instead of two), and never books against rules that changed since: every
change to them, raw SQL included, moves ``business.config_version``, and the write
checks it (migration 2026-11-27T02:00)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from booking import db
from booking.access.principal import Principal
from booking.availability import context as availability_context
from booking.availability import service as availability
from booking.bookings import placing, store
from booking.bookings.checks import CustomerInput
from tests.support import World, at


async def _book(
    client: httpx.AsyncClient, world: World, starts_at: datetime, **kwargs: Any
) -> httpx.Response:
    phone = f"+39333{abs(hash((starts_at, str(kwargs)))) % 10_000_000:07d}"
    return await client.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(starts_at, phone=phone, **kwargs),
    )


async def _sql(statement: str, *args: Any) -> None:
    async with db.connection() as conn:
        await conn.execute(statement, *args)


async def _warm(world: World, client: httpx.AsyncClient, staff: UUID | None) -> None:
    """A first booking makes the API process remember the context."""
    made = await _book(client, world, at(5, 9), staff=staff)
    assert made.status_code == 201, made.text


@pytest.mark.parametrize("staff_named", [True, False], ids=["one-staff", "any-staff"])
async def test_shorter_working_hours_apply_to_the_next_booking(
    world: World, staff_named: bool
) -> None:
    desk = world.client("front_desk")
    await _warm(world, desk, world.staff[0] if staff_named else None)
    await _sql(
        "UPDATE working_hours SET closes_at = '12:00' WHERE business_id = $1", world.business_id
    )
    late = await _book(desk, world, at(5, 15), staff=world.staff[0] if staff_named else None)
    assert late.status_code == 422, late.text
    assert "working hours" in late.json()["detail"]
    early = await _book(desk, world, at(5, 11), staff=world.staff[0] if staff_named else None)
    assert early.status_code == 201, early.text


async def test_longer_working_hours_apply_to_the_next_booking(world: World) -> None:
    desk = world.client("front_desk")
    await _warm(world, desk, world.staff[1])
    outside = await _book(desk, world, at(5, 19), staff=world.staff[1])
    assert outside.status_code == 422, outside.text
    await _sql("UPDATE working_hours SET closes_at = '21:00' WHERE staff_id = $1", world.staff[1])
    inside = await _book(desk, world, at(5, 19), staff=world.staff[1])
    assert inside.status_code == 201, inside.text


async def test_a_new_duration_shapes_the_next_booking(world: World) -> None:
    desk = world.client("front_desk")
    await _warm(world, desk, world.staff[0])
    await _sql("UPDATE service SET duration_minutes = 75 WHERE id = $1", world.cut)
    made = await _book(desk, world, at(5, 14), staff=world.staff[0])
    assert made.status_code == 201, made.text
    body = made.json()
    took = datetime.fromisoformat(body["ends_at"]) - datetime.fromisoformat(body["starts_at"])
    assert took == timedelta(minutes=75)


async def test_a_deactivated_member_of_staff_is_not_booked(world: World) -> None:
    desk = world.client("front_desk")
    await _warm(world, desk, world.staff[2])
    await _sql("UPDATE staff SET active = false WHERE id = $1", world.staff[2])
    refused = await _book(desk, world, at(5, 14), staff=world.staff[2])
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "staff_id"


async def test_staff_taken_off_the_service_is_not_booked(world: World) -> None:
    desk = world.client("front_desk")
    await _warm(world, desk, world.staff[1])
    await _sql(
        "DELETE FROM service_staff WHERE service_id = $1 AND staff_id = $2",
        world.cut,
        world.staff[1],
    )
    refused = await _book(desk, world, at(5, 14), staff=world.staff[1])
    assert refused.status_code == 422, refused.text
    # "any staff" now never picks them, however busy the others are.
    for hour in (10, 10, 10):
        made = await _book(desk, world, at(6, hour))
        assert made.status_code in (201, 409), made.text
        if made.status_code == 201:
            assert made.json()["staff_id"] != str(world.staff[1])


async def test_a_longer_notice_binds_the_next_app_booking(world: World) -> None:
    app = world.client("app")
    soon = at(1, 12)
    await _warm(world, app, world.staff[0])
    await _sql(
        "UPDATE business SET min_notice_minutes = 7 * 24 * 60 WHERE id = $1", world.business_id
    )
    refused = await _book(app, world, soon, staff=world.staff[0])
    assert refused.status_code == 422, refused.text
    assert "notice" in refused.json()["detail"]


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE business SET locale = 'en' WHERE id = $1",
        "UPDATE service SET buffer_after_minutes = 0 WHERE business_id = $1",
        "UPDATE staff SET name = 'Giulia B.' WHERE business_id = $1 AND name = 'Giulia'",
        "UPDATE working_hours SET opens_at = '08:00' WHERE business_id = $1",
        "DELETE FROM working_hours WHERE business_id = $1 AND weekday = 0",
        "INSERT INTO working_hours (business_id, staff_id, weekday, opens_at, closes_at) "
        "SELECT $1, id, 0, '19:00', '20:00' FROM staff WHERE business_id = $1 LIMIT 1",
        "DELETE FROM service_staff WHERE service_id IN "
        "(SELECT id FROM service WHERE business_id = $1 AND name = 'Colour')",
        "INSERT INTO service (business_id, name, duration_minutes) VALUES ($1, 'New', 15)",
        "INSERT INTO staff (business_id, name) VALUES ($1, 'Nuovo')",
        "INSERT INTO staff_hours_exception (business_id, staff_id, day) "
        "SELECT $1, id, current_date + 3 FROM staff WHERE business_id = $1 LIMIT 1",
    ],
)
async def test_every_change_to_the_rules_moves_the_stamp(world: World, change: str) -> None:
    async with db.connection() as conn:
        before = await conn.fetchval(
            "SELECT config_version FROM business WHERE id = $1", world.business_id
        )
        other = await conn.fetchval(
            "SELECT config_version FROM business WHERE id = $1", world.other_business_id
        )
        await conn.execute(change, world.business_id)
        after = await conn.fetchval(
            "SELECT config_version FROM business WHERE id = $1", world.business_id
        )
        assert after != before
        assert other == await conn.fetchval(
            "SELECT config_version FROM business WHERE id = $1", world.other_business_id
        )


async def test_a_stale_stamp_is_refused_by_the_database_and_the_service_reads_again(
    world: World,
) -> None:
    desk = Principal(
        kind="staff", id="desk", role="front_desk", business_ids=frozenset({world.business_id})
    )
    async with db.connection() as conn:
        context = await availability_context.load_service_context(
            conn, world.business_id, world.cut
        )
    await _sql("UPDATE service SET duration_minutes = 45 WHERE id = $1", world.cut)
    assert context.config_version is not None
    async with db.connection() as conn:
        with pytest.raises(asyncpg.PostgresError) as refused:
            await store.insert_active(
                conn,
                context,
                [world.staff[0]],
                at(5, 10),
                status="confirmed",
                channel="front_desk",
                principal=desk,
                event="booking.created",
                customer=("Anna", "+393331234567", "it"),
                checked=True,
            )
        assert refused.value.sqlstate == store.STALE_CONTEXT
        assert await conn.fetchval("SELECT count(*) FROM booking") == 0
    # The service, holding that same stale context in memory, reads it again and books
    # with the new duration.
    key = (world.business_id, world.cut, (world.staff[0],))
    availability_context._contexts[key] = context
    row = await placing.create_booking(
        desk,
        world.business_id,
        world.cut,
        at(5, 10),
        CustomerInput("Anna", "+393331234567"),
        staff_id=world.staff[0],
    )
    assert row["ends_at"] - row["starts_at"] == timedelta(minutes=45)
    assert availability_context._contexts.get(key) is not context


# ---------------------------------------------------------------- availability searches


async def _search(client: httpx.AsyncClient, world: World, **params: Any) -> httpx.Response:
    query = {
        "service_id": str(world.cut),
        "from": at(5, 0).isoformat(),
        "to": at(7, 0).isoformat(),
        **params,
    }
    return await client.get(f"/v1/businesses/{world.business_id}/availability", params=query)


async def test_a_search_after_a_change_of_hours_shows_the_new_hours(world: World) -> None:
    desk = world.client("front_desk")
    before = await _search(desk, world)
    assert before.status_code == 200, before.text
    assert any(datetime.fromisoformat(s["starts_at"]).hour == 16 for s in before.json()["slots"])
    await _sql(
        "UPDATE working_hours SET closes_at = '12:00' WHERE business_id = $1", world.business_id
    )
    after = await _search(desk, world)
    assert after.status_code == 200, after.text
    starts = [datetime.fromisoformat(s["starts_at"]) for s in after.json()["slots"]]
    assert starts
    assert max(moment.hour for moment in starts) < 12


async def test_a_search_after_staff_leave_the_service_no_longer_offers_them(world: World) -> None:
    desk = world.client("front_desk")
    named = await _search(desk, world, staff_id=str(world.staff[1]))
    assert named.status_code == 200, named.text
    await _sql(
        "DELETE FROM service_staff WHERE service_id = $1 AND staff_id = $2",
        world.cut,
        world.staff[1],
    )
    refused = await _search(desk, world, staff_id=str(world.staff[1]))
    assert refused.status_code == 422, refused.text
    everyone = await _search(desk, world)
    assert everyone.status_code == 200, everyone.text
    offered = {staff for slot in everyone.json()["slots"] for staff in slot["staff_ids"]}
    assert offered == {str(world.staff[0]), str(world.staff[2])}


async def test_a_search_on_a_stale_remembered_context_is_built_again(world: World) -> None:
    async with db.connection() as conn:
        stale = await availability_context.load_service_context(conn, world.business_id, world.cut)
    await _sql("UPDATE service SET duration_minutes = 90 WHERE id = $1", world.cut)
    availability_context._contexts[(world.business_id, world.cut, None)] = stale
    context, times = await availability.free_times(world.business_id, world.cut, at(5, 0), at(6, 0))
    assert context.shape.duration == timedelta(minutes=90)
    assert times
    assert all(ends_at - starts_at == timedelta(minutes=90) for starts_at, ends_at, _ in times)
    remembered = availability_context._contexts[(world.business_id, world.cut, None)]
    assert remembered.config_version != stale.config_version
