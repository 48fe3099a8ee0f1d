"""alternatives_near searches outwards (6 h, then 2 days, then the whole range) for
speed; its answer must be exactly the brute-force one: the ``limit`` free slots
nearest the target over [target - 2 days, target + 14 days]."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from booking import db
from booking.availability.context import load_service_context
from booking.availability.service import alternatives_near, earliest_slots, search_slots
from booking.availability.slots import FreeSlot, nearest_slots
from tests.support import World, at


async def _brute_force(world: World, target: datetime, limit: int, staff_view: bool) -> list[Any]:
    async with db.connection() as conn:
        context = await load_service_context(conn, world.business_id, world.cut)
        now = datetime.now(UTC)
        slots = await search_slots(
            conn,
            context,
            max(target - timedelta(days=2), now),
            max(target, now) + timedelta(days=14),
            now=now,
            apply_notice=not staff_view,
        )
    return nearest_slots(slots, target, limit)


async def _outwards(world: World, target: datetime, limit: int, staff_view: bool) -> list[Any]:
    async with db.connection() as conn:
        context = await load_service_context(conn, world.business_id, world.cut)
        found: list[FreeSlot] = await alternatives_near(
            conn, context, target, limit=limit, apply_notice=not staff_view
        )
    return found


async def _fill_days(world: World, first: int, days: int) -> None:
    """Every member of staff booked solid, 09:00-18:00, on ``days`` days from ``first``."""
    async with db.transaction() as conn:
        customer = await conn.fetchval(
            "INSERT INTO customer (business_id, name, phone) VALUES ($1, 'Full', '+393330001111') "
            "RETURNING id",
            world.business_id,
        )
        for offset in range(first, first + days):
            for staff_id in world.staff:
                for half_hour in range(18):
                    start = at(offset, 9) + timedelta(minutes=30 * half_hour)
                    await conn.execute(
                        "INSERT INTO booking (business_id, staff_id, service_id, customer_id, "
                        "status, channel, reference_code, starts_at, ends_at, blocked_from, "
                        "blocked_until) VALUES ($1, $2, $3, $4, 'confirmed', 'web', $5, $6, $7, "
                        "$6, $7)",
                        world.business_id,
                        staff_id,
                        world.cut,
                        customer,
                        f"F{offset}{staff_id.hex[:4]}{half_hour:02d}",
                        start,
                        start + timedelta(minutes=30),
                    )


@pytest.mark.parametrize("limit", [1, 5, 20])
async def test_outward_search_equals_the_whole_range_search(world: World, limit: int) -> None:
    await _fill_days(world, 3, 3)  # days 3-5 full: the narrow windows come up short there
    targets = [
        at(2, 12),  # free day: the 6-hour window suffices
        at(4, 13),  # middle of the full days: needs the whole range
        at(3, 9, 5),  # edge of the full block, off the step grid
        at(6, 8),  # just after the block, before opening
        datetime.now(UTC) - timedelta(hours=3),  # in the past: clipped at now
    ]
    for target in targets:
        for staff_view in (True, False):
            expected = await _brute_force(world, target, limit, staff_view)
            found = await _outwards(world, target, limit, staff_view)
            assert found == expected, (target, staff_view)
            assert len(found) == limit


@pytest.mark.parametrize("limit", [1, 5, 20])
async def test_earliest_slots_equal_the_head_of_the_whole_range_search(
    world: World, limit: int
) -> None:
    """The counter's rebooking options: searched a day, the next two, the next four,
    then the rest, each piece once."""
    await _fill_days(world, 1, 6)  # tomorrow and five more days full: every piece is used
    async with db.connection() as conn:
        context = await load_service_context(conn, world.business_id, world.cut)
        now = datetime.now(UTC)
        for start in (now, at(1, 9), at(2, 12), at(5, 17), at(6, 18)):
            for staff_view in (True, False):
                whole = await search_slots(
                    conn,
                    context,
                    start,
                    start + timedelta(days=14),
                    now=now,
                    apply_notice=not staff_view,
                )
                head = await earliest_slots(
                    conn,
                    context,
                    start,
                    start + timedelta(days=14),
                    limit,
                    now=now,
                    apply_notice=not staff_view,
                )
                assert head == whole[:limit], (start, staff_view)
