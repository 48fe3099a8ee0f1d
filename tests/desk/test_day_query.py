"""The day view reads only the day asked for: an index range, never the business's
bookings from the first one on (issue 15; EXPLAIN over a few thousand bookings)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from booking import db
from booking.access.principal import Principal
from booking.availability.service import _BUSY_SQL
from booking.desk.day import DAY_BLOCKS_SQL, DAY_BOOKINGS_SQL, SHOWN_STATUSES, load_day
from booking.desk.related import _RESOURCES_SQL
from tests.support import ROME, World, days_ahead, rome

DAYS = 300
PER_DAY = 10  # per member of staff: 09:00, 09:45, ...


async def _seed(world: World) -> None:
    """3 staff x 10 bookings a day over 300 days (half of them past): 9,000 bookings,
    plus one that starts the evening before the day looked at and ends after midnight."""
    async with db.connection() as conn:
        customer = await conn.fetchval(
            "INSERT INTO customer (business_id, name, phone) VALUES ($1, 'Anna Ferri', "
            "'+393330000001') RETURNING id",
            world.business_id,
        )
        first = rome(days_ahead(-DAYS // 2), 9)
        await conn.execute(
            """
            INSERT INTO booking (business_id, staff_id, service_id, customer_id, status,
                                 channel, reference_code, starts_at, ends_at, blocked_from,
                                 blocked_until)
            SELECT $1, s.id, $2, $3, 'confirmed', 'web',
                   'T' || lpad(s.k::text, 1, '0') || lpad(g.n::text, 5, '0'),
                   t, t + interval '30 minutes', t, t + interval '30 minutes'
            FROM (SELECT id, row_number() OVER (ORDER BY id) AS k
                  FROM unnest($4::uuid[]) id) s
            CROSS JOIN generate_series(0, $5 - 1) g(n)
            CROSS JOIN LATERAL (SELECT $6::timestamptz + (g.n / $7) * interval '1 day'
                                       + (g.n % $7) * interval '45 minutes' AS t) slot
            """,
            world.business_id,
            world.cut,
            customer,
            world.staff,
            DAYS * PER_DAY,
            first,
            PER_DAY,
        )
        evening = rome(days_ahead(2), 23)
        await conn.execute(
            "INSERT INTO booking (business_id, staff_id, service_id, customer_id, status, "
            "channel, reference_code, starts_at, ends_at, blocked_from, blocked_until) "
            "VALUES ($1, $2, $3, $4, 'confirmed', 'web', 'NIGHTX', $5, $6, $5, $6)",
            world.business_id,
            world.staff[0],
            world.cut,
            customer,
            evening,
            evening + timedelta(hours=2),
        )
        await conn.execute("ANALYZE booking")
        await conn.execute("ANALYZE allocation")


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = [plan]
    for child in plan.get("Plans", []):
        out.extend(_nodes(child))
    return out


async def _explain(sql: str, *args: Any) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        raw = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
    plan = json.loads(raw) if isinstance(raw, str) else raw
    return _nodes(plan[0]["Plan"])


async def test_the_day_view_reads_an_index_range_of_the_day(world: World) -> None:
    await _seed(world)
    day = days_ahead(3)
    start = rome(day, 0)
    end = rome(day + timedelta(days=1), 0)
    nodes = await _explain(DAY_BOOKINGS_SQL, world.business_id, start, end, list(SHOWN_STATUSES))
    on_booking = [n for n in nodes if n.get("Relation Name") == "booking"]
    assert on_booking, nodes
    assert not [n for n in on_booking if n["Node Type"] == "Seq Scan"], nodes
    used = {n.get("Index Name") for n in nodes}
    assert "booking_business_span_idx" in used, nodes
    # Only the day is read: the rows the scan produced and threw away are a handful,
    # not the 4,500 bookings before the day.
    for node in on_booking:
        read = (
            node["Actual Rows"]
            + node.get("Rows Removed by Filter", 0)
            + node.get("Rows Removed by Index Recheck", 0)
        )
        assert read <= 3 * PER_DAY + 5, node
    # The blocks of the day: the allocations' own GiST, no scan of the table.
    blocks = await _explain(DAY_BLOCKS_SQL, world.business_id, start, end)
    assert not [
        n for n in blocks if n.get("Relation Name") == "allocation" and n["Node Type"] == "Seq Scan"
    ], blocks


async def test_a_booking_from_the_evening_before_is_on_the_day(world: World) -> None:
    await _seed(world)
    principal = Principal(
        kind="staff", id="t", role="front_desk", business_ids=frozenset({world.business_id})
    )
    loaded = await load_day(principal, world.business_id, days_ahead(3), ROME)
    refs = [
        e.booking["reference_code"]
        for member in loaded.staff
        for e in member.entries
        if e.booking is not None
    ]
    assert "NIGHTX" in refs
    assert len(refs) == 3 * PER_DAY + 1
    before = await load_day(principal, world.business_id, days_ahead(2), ROME)
    assert "NIGHTX" in [
        e.booking["reference_code"] for m in before.staff for e in m.entries if e.booking
    ]


async def test_the_card_reads_use_indexes(world: World) -> None:
    """A card's earliest alternatives read the staff's busy time, and its resources the
    booking's allocations: both from an index over 9,000 bookings, never a scan of the
    table (issue 15: ~40 ms and ~20 ms at 100,000, on every exact reference typed)."""
    await _seed(world)
    now = rome(days_ahead(3), 8)
    busy = await _explain(_BUSY_SQL, world.staff, now, now + timedelta(days=1), None)
    on_booking = [n for n in busy if n.get("Relation Name") == "booking"]
    assert on_booking, busy
    assert not [n for n in on_booking if n["Node Type"] == "Seq Scan"], busy
    assert "booking_staff_busy_idx" in {n.get("Index Name") for n in busy}, busy
    async with db.connection() as conn:
        booking_id = await conn.fetchval(
            "SELECT id FROM booking WHERE business_id = $1 AND reference_code = 'NIGHTX'",
            world.business_id,
        )
    resources = await _explain(_RESOURCES_SQL, world.business_id, booking_id, None)
    assert not [
        n
        for n in resources
        if n.get("Relation Name") == "allocation" and n["Node Type"] == "Seq Scan"
    ], resources
