"""What else a booking card shows, when the booking has it: the resources (rooms,
cabins, chairs, devices) its allocations hold, a seat booking's class, a sequence's
whole visit, a series' next occurrences, and the booking's journey.

Reads only. The journey is the journey service's own (:func:`booking_journey`), read as
the signed-in staff member may see it; nothing here rebuilds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from booking.access.principal import Principal
from booking.journey.schemas import JourneyEntry
from booking.journey.timeline import booking_journey

NEXT_OCCURRENCES = 5
JOURNEY_ENTRIES = 30  # the latest ones; the API has them all

# Every resource other than staff an allocation of the booking holds: its own (kind
# 'resource'), its segments' (kind 'segment'), or its class's (kind 'session'). Three
# reads, each on its own index (allocation_booking_kind, allocation_segment_resource);
# one OR over them scanned every allocation of the business (~20 ms at 100,000, issue
# 15: the card comes with an exact search hit). A class's allocations have no index of
# their own (a seat booking only, and few classes).
_RESOURCES_SQL = """
SELECT DISTINCT ON (r.id) r.id, r.name, r.kind, lower(a.during) AS from_at
FROM (
    SELECT resource_id, during FROM allocation
    WHERE business_id = $1 AND booking_id = $2 AND kind <> 'segment'
    UNION ALL
    SELECT a.resource_id, a.during FROM booking_segment g
    JOIN allocation a ON a.business_id = g.business_id AND a.segment_id = g.id
    WHERE g.business_id = $1 AND g.booking_id = $2
    UNION ALL
    SELECT resource_id, during FROM allocation
    WHERE $3::uuid IS NOT NULL AND business_id = $1 AND session_id = $3
) a
JOIN resource r ON r.business_id = $1 AND r.id = a.resource_id
WHERE r.kind <> 'staff'
ORDER BY r.id, lower(a.during)
"""

_SESSION_SQL = """
SELECT s.id, s.starts_at, s.ends_at, s.capacity, s.seats_taken, s.status,
       sv.name AS service_name, st.name AS staff_name, r.name AS resource_name
FROM session s
JOIN service sv ON sv.business_id = s.business_id AND sv.id = s.service_id
JOIN staff st ON st.business_id = s.business_id AND st.id = s.staff_id
LEFT JOIN resource r ON r.business_id = s.business_id AND r.id = s.resource_id
WHERE s.business_id = $1 AND s.id = $2
"""

_SEGMENTS_SQL = """
SELECT g.position, g.starts_at, g.ends_at, sv.name AS service_name,
       st.name AS staff_name, r.name AS resource_name
FROM booking_segment g
JOIN service sv ON sv.business_id = g.business_id AND sv.id = g.service_id
JOIN staff st ON st.business_id = g.business_id AND st.id = g.staff_id
LEFT JOIN resource r ON r.business_id = g.business_id AND r.id = g.resource_id
WHERE g.business_id = $1 AND g.booking_id = $2
ORDER BY g.position
"""

_NEXT_IN_SERIES_SQL = """
SELECT b.id, b.reference_code, b.starts_at, b.status
FROM booking b
WHERE b.business_id = $1 AND b.series_id = $2 AND b.id <> $3 AND b.starts_at >= $4
  AND b.status IN ('held', 'pending', 'confirmed')
ORDER BY b.starts_at, b.id
LIMIT $5
"""


@dataclass(frozen=True, slots=True)
class Related:
    resources: list[dict[str, Any]] = field(default_factory=list)
    session: dict[str, Any] | None = None
    segments: list[dict[str, Any]] = field(default_factory=list)
    next_in_series: list[dict[str, Any]] = field(default_factory=list)


async def load_related(conn: asyncpg.Connection, booking: dict[str, Any], now: datetime) -> Related:
    business_id: UUID = booking["business_id"]
    session_id: UUID | None = booking.get("session_id")
    resources = await conn.fetch(_RESOURCES_SQL, business_id, booking["id"], session_id)
    session = await conn.fetchrow(_SESSION_SQL, business_id, session_id) if session_id else None
    segments = (
        await conn.fetch(_SEGMENTS_SQL, business_id, booking["id"])
        if booking.get("is_sequence")
        else []
    )
    series_id: UUID | None = booking.get("series_id")
    upcoming = (
        await conn.fetch(
            _NEXT_IN_SERIES_SQL, business_id, series_id, booking["id"], now, NEXT_OCCURRENCES
        )
        if series_id
        else []
    )
    return Related(
        resources=sorted((dict(r) for r in resources), key=lambda r: (r["from_at"], r["name"])),
        session=dict(session) if session else None,
        segments=[dict(s) for s in segments],
        next_in_series=[dict(b) for b in upcoming],
    )


async def load_journey(principal: Principal, booking_id: UUID) -> list[JourneyEntry]:
    """The latest touchpoints of the booking's journey, as the journey API gives them."""
    journey = await booking_journey(principal, booking_id)
    return journey.entries[-JOURNEY_ENTRIES:]
