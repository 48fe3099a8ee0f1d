"""A search reads busy time only as far as its service reaches past the range
(availability.service._reach): the buffer before its first start, the duration and
buffer after its last. Time booked just outside the range but inside that reach must
still refuse the slots it touches; time beyond it must not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from booking import db
from booking.availability.context import load_service_context
from booking.availability.service import search_slots
from tests.support import World, at


async def _busy(world: World, staff: UUID, starts: datetime, ends: datetime, code: str) -> None:
    async with db.transaction() as conn:
        customer = await conn.fetchval(
            "INSERT INTO customer (business_id, name, phone) VALUES ($1, 'Edge', $2) RETURNING id",
            world.business_id,
            "+393330009" + code[-3:],
        )
        await conn.execute(
            "INSERT INTO booking (business_id, staff_id, service_id, customer_id, status, "
            "channel, reference_code, starts_at, ends_at, blocked_from, blocked_until) "
            "VALUES ($1, $2, $3, $4, 'confirmed', 'web', $5, $6, $7, $6, $7)",
            world.business_id,
            staff,
            world.cut,
            customer,
            code,
            starts,
            ends,
        )


async def _starts(
    world: World, range_start: datetime, range_end: datetime
) -> set[tuple[datetime, UUID]]:
    async with db.connection() as conn:
        colour = await load_service_context(conn, world.business_id, world.colour)
        found = await search_slots(
            conn, colour, range_start, range_end, now=datetime.now(UTC), apply_notice=False
        )
    return {(slot.starts_at, slot.staff_id) for slot in found}


async def test_busy_time_inside_the_services_reach_past_the_range_refuses_its_slots(
    world: World,
) -> None:
    # Colour: 60 minutes, 10 minutes of buffer before and after, staff 0 and 1.
    # Each search covers one start, 10:00, which blocks 09:50-11:10.
    giulia, marco = world.staff[0], world.staff[1]
    ten = at(3, 10).astimezone(UTC)
    minutes = timedelta(minutes=1)
    await _busy(world, giulia, ten - 40 * minutes, ten - 5 * minutes, "EDGE001")  # in reach
    await _busy(world, marco, ten + 65 * minutes, ten + 95 * minutes, "EDGE002")  # in reach
    assert await _starts(world, ten, ten + 15 * minutes) == set()
    # The next day the same bookings end exactly at 09:50 and start exactly at 11:10:
    # they touch the 10:00 block without overlapping it, and refuse nothing.
    ten = at(4, 10).astimezone(UTC)
    await _busy(world, giulia, ten - 40 * minutes, ten - 10 * minutes, "EDGE003")
    await _busy(world, marco, ten + 70 * minutes, ten + 100 * minutes, "EDGE004")
    assert await _starts(world, ten, ten + 15 * minutes) == {(ten, giulia), (ten, marco)}
