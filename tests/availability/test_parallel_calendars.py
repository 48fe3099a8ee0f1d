"""A long availability search reads its busy time in two halves on two connections at
once; the calendars must be exactly those of one read, whatever lies on the seam."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from booking import db
from booking.availability.service import PARALLEL_OVER, free_times, load_calendars
from booking.availability.slots import StaffCalendar, _merge_seconds
from tests.support import World, at


def _merged(calendars: list[StaffCalendar]) -> dict[str, tuple[list[int], list[int]]]:
    return {
        str(calendar.staff_id): _merge_seconds(calendar.busy_seconds or ())
        for calendar in calendars
    }


async def test_two_halves_read_the_same_busy_time_as_one(world: World) -> None:
    start = at(1, 0).astimezone(UTC)
    end = start + timedelta(days=30)
    # load_calendars widens by a day each side; the halves meet in the middle of that.
    seam = start - timedelta(days=1) + (end - start + timedelta(days=2)) / 2
    async with db.connection() as conn:
        await conn.execute(
            """
            INSERT INTO booking (business_id, staff_id, service_id, status, channel,
                reference_code, starts_at, ends_at, blocked_from, blocked_until,
                hold_expires_at)
            SELECT $1, $2, $3, 'held', 'system', 'SEAM' || n,
                   $4::timestamptz + n * interval '7 hours',
                   $4::timestamptz + n * interval '7 hours' + interval '2 hours',
                   $4::timestamptz + n * interval '7 hours',
                   $4::timestamptz + n * interval '7 hours' + interval '2 hours',
                   now() + interval '1 hour'
            FROM generate_series(0, 90) AS n
            """,
            world.business_id,
            world.staff[0],
            world.cut,
            start,
        )
        # Live holds: they block time like bookings and need no customer. Staff 1: one
        # straddles the seam. Staff 2: one ends on it, the next starts there (one busy
        # stretch once merged). Staff 0: time off across it.
        for code, staff, (a, b) in (
            ("SEAMX1", 1, (seam - timedelta(hours=1), seam + timedelta(hours=1))),
            ("SEAMX2", 2, (seam - timedelta(hours=3), seam)),
            ("SEAMX3", 2, (seam, seam + timedelta(hours=2))),
        ):
            await conn.execute(
                """
                INSERT INTO booking (business_id, staff_id, service_id, status, channel,
                    reference_code, starts_at, ends_at, blocked_from, blocked_until,
                    hold_expires_at)
                VALUES ($1, $2, $3, 'held', 'system', $4, $5, $6, $5, $6,
                        now() + interval '1 hour')
                """,
                world.business_id,
                world.staff[staff],
                world.cut,
                code,
                a,
                b,
            )
        await conn.execute(
            "INSERT INTO time_off (business_id, staff_id, starts_at, ends_at, reason) "
            "VALUES ($1, $2, $3, $4, 'across the seam')",
            world.business_id,
            world.staff[0],
            seam - timedelta(days=2),
            seam + timedelta(days=1),
        )
        once = await load_calendars(conn, world.staff, start, end)
    assert end - start + timedelta(days=2) > PARALLEL_OVER
    async with db.connection() as conn:
        halves = await load_calendars(conn, world.staff, start, end, parallel=True)
    assert _merged(halves) == _merged(once)
    # And the merged busy time really covers the seam cases.
    seam_s = int(seam.timestamp())
    for staff in world.staff:
        starts, ends = _merged(once)[str(staff)]
        assert any(s < seam_s < e for s, e in zip(starts, ends, strict=True)), staff


async def test_a_month_search_offers_nothing_across_a_booking_on_the_seam(world: World) -> None:
    start = at(1, 0)
    end = start + timedelta(days=30)
    seam = (start - timedelta(days=1)).astimezone(UTC) + (end - start + timedelta(days=2)) / 2
    desk = world.client("front_desk")
    # A 60-minute colour at 09:00 on the seam's day, staff 0 only.
    seam_day = seam.astimezone(at(1, 0).tzinfo).date()
    colour_at = datetime.combine(seam_day, at(1, 9).timetz())
    made = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(colour_at, service=world.colour, staff=world.staff[0]),
    )
    assert made.status_code == 201, made.text
    _, times = await free_times(world.business_id, world.cut, start, end, world.staff[0])
    booked_from = colour_at - timedelta(minutes=10)  # colour's buffer before
    booked_until = colour_at + timedelta(minutes=70)  # 60 min + 10 min buffer after
    for starts_at, ends_at, staff_ids in times:
        assert staff_ids == [world.staff[0]]
        assert ends_at + timedelta(minutes=10) <= booked_from or starts_at >= booked_until
    assert times, "the month has free times"
