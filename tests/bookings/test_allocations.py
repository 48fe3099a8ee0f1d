"""Allocations: one exclusion constraint decides for every kind of resource and every
kind of allocation (a booking's staff member, its room, a block), whoever writes."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
import pytest

from booking import db
from tests.support import World, at

# Two active allocations of one resource whose ranges overlap: must never exist.
OVERLAPPING_ACTIVE = """
    SELECT count(*) FROM allocation a JOIN allocation b
      ON a.business_id = b.business_id AND a.resource_id = b.resource_id AND a.id < b.id
     AND a.during && b.during
    WHERE a.active AND b.active
"""


async def _room(conn: asyncpg.Connection, world: World, name: str = "Cabin 1") -> UUID:
    room: UUID = await conn.fetchval(
        "INSERT INTO resource (business_id, kind, name, group_name) "
        "VALUES ($1, 'room', $2, 'cabin') RETURNING id",
        world.business_id,
        name,
    )
    return room


async def _block(
    conn: asyncpg.Connection, world: World, resource: UUID, starts: datetime, minutes: int
) -> None:
    await conn.execute(
        "INSERT INTO allocation (business_id, resource_id, kind, during, active) "
        "VALUES ($1, $2, 'block', tstzrange($3::timestamptz, $3 + $4::interval, '[)'), true)",
        world.business_id,
        resource,
        starts,
        timedelta(minutes=minutes),
    )


async def _raw_booking(
    conn: asyncpg.Connection,
    world: World,
    starts: datetime,
    code: str,
    *,
    staff: int = 0,
    resource: UUID | None = None,
) -> UUID:
    booking_id: UUID = await conn.fetchval(
        """
        INSERT INTO booking (business_id, staff_id, resource_id, service_id, status, channel,
            reference_code, starts_at, ends_at, blocked_from, blocked_until, hold_expires_at)
        VALUES ($1, $2, $3, $4, 'held', 'system', $5, $6::timestamptz,
                $6 + interval '30 minutes', $6, $6 + interval '30 minutes',
                now() + interval '1 hour')
        RETURNING id
        """,
        world.business_id,
        world.staff[staff],
        resource,
        world.cut,
        code,
        starts,
    )
    return booking_id


async def test_every_staff_member_is_a_resource_of_kind_staff(world: World) -> None:
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT id, kind FROM resource WHERE business_id = $1", world.business_id
        )
        await conn.execute("UPDATE staff SET name = 'Giulia R.' WHERE id = $1", world.staff[0])
        renamed = await conn.fetchval("SELECT name FROM resource WHERE id = $1", world.staff[0])
    assert {row["id"] for row in rows} == set(world.staff)
    assert {row["kind"] for row in rows} == {"staff"}
    assert renamed == "Giulia R."


async def test_a_booking_row_brings_its_allocations_and_their_active_flag_follows_status(
    world: World,
) -> None:
    async with db.connection() as conn:
        room = await _room(conn, world)
        booking_id = await _raw_booking(conn, world, at(3, 10), "ALC001", resource=room)
        rows = await conn.fetch(
            "SELECT resource_id, kind, active, during FROM allocation WHERE booking_id = $1 "
            "ORDER BY kind DESC",
            booking_id,
        )
        assert [(r["resource_id"], r["kind"], r["active"]) for r in rows] == [
            (world.staff[0], "staff", True),
            (room, "resource", True),
        ]
        assert rows[0]["during"].lower == at(3, 10)
        await conn.execute("UPDATE booking SET status = 'expired' WHERE id = $1", booking_id)
        active = await conn.fetchval(
            "SELECT count(*) FROM allocation WHERE booking_id = $1 AND active", booking_id
        )
    assert active == 0


@pytest.mark.parametrize("kind", ["staff", "room", "block"])
async def test_a_raw_overlapping_insert_fails_with_23p01_whatever_the_kind(
    world: World, kind: str
) -> None:
    async with db.connection() as conn:
        room = await _room(conn, world)
        await _raw_booking(conn, world, at(3, 10), "ALC010", resource=room)
        attempt: Awaitable[object]
        if kind == "staff":  # same member of staff, no room
            attempt = _raw_booking(conn, world, at(3, 10, 15), "ALC011")
        elif kind == "room":  # another member of staff, the same room
            attempt = _raw_booking(conn, world, at(3, 10, 15), "ALC012", staff=1, resource=room)
        else:  # a block written straight into allocation
            attempt = _block(conn, world, room, at(3, 10, 20), 5)
        with pytest.raises(asyncpg.exceptions.ExclusionViolationError) as caught:
            await attempt
        assert caught.value.sqlstate == "23P01"
        assert caught.value.constraint_name == "allocation_no_overlap"
        # The same room and staff back to back are fine: ranges are half-open.
        await _raw_booking(conn, world, at(3, 10, 30), "ALC013", resource=room)
        assert await conn.fetchval(OVERLAPPING_ACTIVE) == 0


async def test_a_change_moves_the_allocation_and_frees_the_old_time(world: World) -> None:
    desk = world.client("front_desk")
    made = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(4, 10), staff=world.staff[0]),
    )
    assert made.status_code == 201, made.text
    booking_id = UUID(made.json()["id"])
    moved = await desk.patch(
        f"/v1/bookings/{booking_id}",
        json={"starts_at": at(4, 10, 15).isoformat(), "staff_id": str(world.staff[1])},
    )
    assert moved.status_code == 200, moved.text
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT resource_id, during, active FROM allocation WHERE booking_id = $1",
            booking_id,
        )
        assert [(r["resource_id"], r["during"].lower, r["active"]) for r in rows] == [
            (world.staff[1], at(4, 10, 15), True)
        ]
    again = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(4, 10), staff=world.staff[0], phone="+393339990000"),
    )
    assert again.status_code == 201, again.text


async def test_time_off_over_a_booking_takes_its_allocation_never_two_active_overlap(
    world: World,
) -> None:
    """The recovery design (docs/decisions.md): the block is active at once, the booking
    keeps its row and status but its staff allocation is released (``lost``) while the
    lost-slot recovery offers it held alternatives; the database refuses new bookings
    over the block; when the block goes, the booking gets its time back."""
    manager = world.client("manager")
    made = await manager.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(5, 10), staff=world.staff[0]),
    )
    assert made.status_code == 201, made.text
    booking_id = UUID(made.json()["id"])
    off = await manager.post(
        f"/v1/businesses/{world.business_id}/staff/{world.staff[0]}/time-off",
        json={"starts_at": at(5, 9).isoformat(), "ends_at": at(5, 12).isoformat()},
    )
    assert off.status_code in (200, 201), off.text
    async with db.connection() as conn:
        assert await conn.fetchval(OVERLAPPING_ACTIVE) == 0
        mine = await conn.fetchrow(
            "SELECT active, lost FROM allocation WHERE booking_id = $1", booking_id
        )
        assert (mine["active"], mine["lost"]) == (False, True)
        assert await conn.fetchval("SELECT status FROM booking WHERE id = $1", booking_id) == (
            "confirmed"
        )
        block = await conn.fetchrow(
            "SELECT active, during FROM allocation WHERE kind = 'block' AND resource_id = $1",
            world.staff[0],
        )
        assert block["active"]
        assert block["during"].lower == at(5, 9)
        with pytest.raises(asyncpg.exceptions.ExclusionViolationError):
            await _raw_booking(conn, world, at(5, 11), "ALC020")
        # The time off is withdrawn: the booking holds its time again.
        await conn.execute("DELETE FROM time_off WHERE staff_id = $1", world.staff[0])
        back = await conn.fetchrow(
            "SELECT active, lost FROM allocation WHERE booking_id = $1", booking_id
        )
        assert (back["active"], back["lost"]) == (True, False)
        assert await conn.fetchval(OVERLAPPING_ACTIVE) == 0


async def test_overlapping_time_off_is_covered_not_refused(world: World) -> None:
    async with db.connection() as conn:
        for start, end in ((9, 12), (11, 13)):
            await conn.execute(
                "INSERT INTO time_off (business_id, staff_id, starts_at, ends_at) "
                "VALUES ($1, $2, $3, $4)",
                world.business_id,
                world.staff[1],
                at(6, start),
                at(6, end),
            )
        blocks = await conn.fetch(
            "SELECT lower(during) AS s, active FROM allocation WHERE kind = 'block' "
            "ORDER BY lower(during)"
        )
        assert [(b["s"], b["active"]) for b in blocks] == [(at(6, 9), True), (at(6, 11), False)]
        # The first goes: the second blocks its own time now.
        await conn.execute(
            "DELETE FROM time_off WHERE staff_id = $1 AND starts_at = $2",
            world.staff[1],
            at(6, 9),
        )
        assert await conn.fetchval("SELECT bool_and(active) FROM allocation") is True
        assert await conn.fetchval(OVERLAPPING_ACTIVE) == 0
