"""The desk's day: per member of staff, their bookings, holds, blocks and free gaps.

Read in three queries (staff with the day's hours, the day's bookings, the day's blocks);
the gaps are pure arithmetic over them (:func:`free_gaps`). At-risk bookings and open
reschedule offers come from the guarantee's own view (:func:`risk_view`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from booking import db
from booking.access.principal import Principal
from booking.guarantee.risk import risk_view

SHOWN_STATUSES = ("held", "pending", "confirmed", "checked_in", "completed", "no_show")
ACTIVE_STATUSES = frozenset({"held", "pending", "confirmed", "checked_in"})
MIN_GAP = timedelta(minutes=15)

# The bookings overlapping [$2, $3): the span predicate is the expression of the GiST
# index booking_business_span_idx, so only the day is read (an index range), never the
# business's bookings from the first one on (tests/desk/test_day_query.py, EXPLAIN).
DAY_BOOKINGS_SQL = """
SELECT b.id, b.staff_id, b.status, b.reference_code, b.version, b.starts_at,
       b.ends_at, b.blocked_from, b.blocked_until, b.hold_expires_at,
       c.name AS customer_name, c.phone AS customer_phone,
       sv.name AS service_name
FROM booking b
JOIN customer c ON c.business_id = b.business_id AND c.id = b.customer_id
JOIN service sv ON sv.business_id = b.business_id AND sv.id = b.service_id
WHERE b.business_id = $1
  AND tstzrange(b.starts_at, b.ends_at, '[)') && tstzrange($2, $3, '[)')
  AND b.status = ANY($4::text[])
ORDER BY b.starts_at, b.id
"""

# Time off overlapping the day: the active allocations' GiST (allocation_no_overlap).
DAY_BLOCKS_SQL = """
SELECT a.resource_id AS staff_id, lower(a.during) AS starts_at,
       upper(a.during) AS ends_at, coalesce(t.reason, '') AS reason
FROM allocation a
LEFT JOIN time_off t ON t.business_id = a.business_id AND t.id = a.time_off_id
WHERE a.business_id = $1 AND a.kind = 'block' AND a.active
  AND a.during && tstzrange($2, $3)
ORDER BY lower(a.during)
"""


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str  # "booking" | "hold" | "block" | "gap"
    starts_at: datetime
    ends_at: datetime
    booking: dict[str, Any] | None = None
    reason: str = ""


@dataclass(slots=True)
class StaffDay:
    id: UUID
    name: str
    hours: list[tuple[datetime, datetime]] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    services: list[tuple[UUID, str, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    tz: ZoneInfo
    staff: list[StaffDay]
    risk: dict[str, Any]


def free_gaps(
    hours: list[tuple[datetime, datetime]], busy: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """The parts of the working ``hours`` no ``busy`` span covers, at least MIN_GAP long."""
    gaps: list[tuple[datetime, datetime]] = []
    spans = sorted(busy)
    for opens, closes in sorted(hours):
        cursor = opens
        for start, end in spans:
            if end <= cursor or start >= closes:
                continue
            if start > cursor:
                gaps.append((cursor, start))
            cursor = max(cursor, end)
        if closes > cursor:
            gaps.append((cursor, closes))
    return [(start, end) for start, end in gaps if end - start >= MIN_GAP]


def _local(day: date, moment: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, moment, tzinfo=tz)


async def load_day(principal: Principal, business_id: UUID, day: date, tz: ZoneInfo) -> Day:
    principal.require("bookings:read", business_id)
    start = _local(day, time(0), tz)
    end = _local(day + timedelta(days=1), time(0), tz)
    async with db.connection() as conn:
        staff_rows = await conn.fetch(
            """
            SELECT s.id, s.name,
                   (SELECT array_agg(ARRAY[e.opens_at, e.closes_at]) FILTER
                          (WHERE e.opens_at IS NOT NULL)
                      FROM staff_hours_exception e WHERE e.business_id = s.business_id
                      AND e.staff_id = s.id AND e.day = $2) AS exception_hours,
                   EXISTS (SELECT 1 FROM staff_hours_exception e WHERE e.business_id =
                      s.business_id AND e.staff_id = s.id AND e.day = $2) AS has_exception,
                   (SELECT array_agg(ARRAY[w.opens_at, w.closes_at] ORDER BY w.opens_at)
                      FROM working_hours w WHERE w.business_id = s.business_id
                      AND w.staff_id = s.id AND w.weekday = $3) AS weekly_hours,
                   (SELECT array_agg(ARRAY[sv.id::text, sv.name, sv.duration_minutes::text]
                                     ORDER BY sv.name)
                      FROM service_staff ss JOIN service sv ON sv.business_id = ss.business_id
                      AND sv.id = ss.service_id WHERE ss.business_id = s.business_id
                      AND ss.staff_id = s.id AND sv.active) AS services
            FROM staff s WHERE s.business_id = $1 AND s.active ORDER BY s.name, s.id
            """,
            business_id,
            day,
            day.weekday(),
        )
        bookings = await conn.fetch(
            DAY_BOOKINGS_SQL, business_id, start, end, list(SHOWN_STATUSES)
        )
        blocks = await conn.fetch(DAY_BLOCKS_SQL, business_id, start, end)
    risk = await risk_view(principal, business_id, day=day)
    staff: dict[UUID, StaffDay] = {}
    for row in staff_rows:
        windows = row["exception_hours"] if row["has_exception"] else row["weekly_hours"]
        member = StaffDay(row["id"], row["name"])
        member.hours = [(_local(day, o, tz), _local(day, c, tz)) for o, c in windows or ()]
        member.services = [(UUID(i), n, int(m)) for i, n, m in row["services"] or ()]
        staff[row["id"]] = member
    busy: dict[UUID, list[tuple[datetime, datetime]]] = {key: [] for key in staff}
    for b in bookings:
        member_day = staff.get(b["staff_id"])
        if member_day is None:
            continue
        kind = "hold" if b["status"] == "held" else "booking"
        member_day.entries.append(Entry(kind, b["starts_at"], b["ends_at"], dict(b)))
        if b["status"] in ACTIVE_STATUSES:
            busy[b["staff_id"]].append((b["blocked_from"], b["blocked_until"]))
    for block in blocks:
        member_day = staff.get(block["staff_id"])
        if member_day is None:
            continue
        member_day.entries.append(
            Entry("block", block["starts_at"], block["ends_at"], reason=block["reason"])
        )
        busy[block["staff_id"]].append((block["starts_at"], block["ends_at"]))
    for key, member_day in staff.items():
        for gap_start, gap_end in free_gaps(member_day.hours, busy[key]):
            member_day.entries.append(Entry("gap", gap_start, gap_end))
        member_day.entries.sort(key=lambda e: (e.starts_at, e.kind != "gap"))
    return Day(day, tz, list(staff.values()), risk)
