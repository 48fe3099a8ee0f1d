"""Writing a sequence: one booking row for the whole visit, one segment row per service.

The booking row (``is_sequence``) holds no time itself; each ``booking_segment`` row
holds its own member of staff and room for its own range under
``allocation_no_overlap`` (trigger ``booking_segment_sync``), and a status change of
the booking flips them all (``booking_allocations_sync``). All of it is written in the
caller's transaction, so a sequence is never half written: a segment nobody can take
rolls the whole visit back. The booking row's event and outbox entry are written by
``store.record_event``, as for any booking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from booking.bookings.references import new_reference_codes
from booking.bookings.store import BOOKING_COLUMNS, REFERENCE_TRIES


@dataclass(frozen=True, slots=True)
class PlannedSegment:
    """One segment at its time, with the staff (and resources) to try, in order."""

    position: int
    service_id: UUID
    starts_at: datetime
    ends_at: datetime
    blocked_from: datetime
    blocked_until: datetime
    staff_ids: tuple[UUID, ...]
    resource_ids: tuple[UUID, ...] = ()


SEGMENT_COLUMNS = """
    g.id, g.business_id, g.booking_id, g.position, g.service_id, g.staff_id, g.resource_id,
    g.starts_at, g.ends_at, g.blocked_from, g.blocked_until
"""


async def insert_visit(
    conn: asyncpg.Connection,
    business_id: UUID,
    plan: Sequence[PlannedSegment],
    *,
    customer_id: UUID | None,
    status: str,
    channel: str,
    partner_id: UUID | None,
    created_by: str,
    notes: str,
    hold_expires_at: datetime | None = None,
) -> asyncpg.Record:
    """The booking row of a sequence: the whole visit (first start to last end), the
    first segment's service and staff; a reference-code clash retries the next code.
    A held visit (a reschedule offer's option) has ``hold_expires_at``."""
    first, last = plan[0], plan[-1]
    for code in new_reference_codes(REFERENCE_TRIES):
        row = await conn.fetchrow(
            f"""
            INSERT INTO booking AS b (business_id, staff_id, service_id, customer_id, partner_id,
                status, channel, reference_code, starts_at, ends_at, blocked_from,
                blocked_until, notes, created_by, hold_expires_at, is_sequence)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, true)
            ON CONFLICT (business_id, reference_code) DO NOTHING
            RETURNING {BOOKING_COLUMNS}
            """,
            business_id,
            first.staff_ids[0],
            first.service_id,
            customer_id,
            partner_id,
            status,
            channel,
            code,
            first.starts_at,
            last.ends_at,
            min(s.blocked_from for s in plan),
            max(s.blocked_until for s in plan),
            notes,
            created_by,
            hold_expires_at,
        )
        if row is not None:
            return row
    raise RuntimeError("no free reference code")  # 6 random codes all taken: not expected


async def place_segments(
    conn: asyncpg.Connection, business_id: UUID, booking_id: UUID, plan: Sequence[PlannedSegment]
) -> list[asyncpg.Record] | None:
    """Insert each segment with the first staff x resource combination the database lets
    have it (each try in a savepoint); None as soon as one segment cannot be placed (the
    caller rolls the visit back). Each try first takes allocation_write_lock on its staff
    and resource over its range, in the same statement, as booking_place does: two visits
    racing for one time otherwise each waited for the other's segment inside
    allocation_no_overlap's check, a deadlock broken after 1 s (503 for the loser)."""
    placed: list[asyncpg.Record] = []
    for segment in plan:
        row = None
        for staff_id in segment.staff_ids:
            for resource_id in segment.resource_ids or (None,):
                try:
                    async with conn.transaction():
                        row = await conn.fetchrow(
                            f"""
                            INSERT INTO booking_segment AS g (business_id, booking_id, position,
                                service_id, staff_id, resource_id, starts_at, ends_at,
                                blocked_from, blocked_until)
                            SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
                            FROM allocation_write_lock(
                                ARRAY[$5::uuid, $6::uuid],
                                ARRAY[tstzrange($9, $10, '[)'), tstzrange($9, $10, '[)')]) AS l
                            RETURNING {SEGMENT_COLUMNS}
                            """,
                            business_id,
                            booking_id,
                            segment.position,
                            segment.service_id,
                            staff_id,
                            resource_id,
                            segment.starts_at,
                            segment.ends_at,
                            segment.blocked_from,
                            segment.blocked_until,
                        )
                except asyncpg.ExclusionViolationError:
                    continue
                break
            if row is not None:
                break
        if row is None:
            return None
        placed.append(row)
    return placed


async def remove_segments(conn: asyncpg.Connection, business_id: UUID, booking_id: UUID) -> None:
    """Release a locked visit's segments (their allocations go with them) before it is
    placed again at another time, in the same transaction."""
    await conn.execute(
        "DELETE FROM booking_segment WHERE business_id = $1 AND booking_id = $2",
        business_id,
        booking_id,
    )


async def segments_of(
    conn: asyncpg.Connection, business_id: UUID, booking_id: UUID
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {SEGMENT_COLUMNS} FROM booking_segment g "
        "WHERE g.business_id = $1 AND g.booking_id = $2 ORDER BY g.position",
        business_id,
        booking_id,
    )
    return rows


async def settle_visit(
    conn: asyncpg.Connection,
    booking: asyncpg.Record,
    placed: Sequence[asyncpg.Record],
    *,
    moved: bool,
    count_change: bool = True,
) -> asyncpg.Record:
    """The booking row follows its segments: the first one's staff, resource and service,
    the visit's span; a move counts as a change (version, change_count) unless it is
    an accepted reschedule offer (``count_change``)."""
    row = await conn.fetchrow(
        f"""
        UPDATE booking b SET staff_id = $3, resource_id = $4, service_id = $5,
            starts_at = $6, ends_at = $7, blocked_from = $8, blocked_until = $9,
            version = version + $10::int, change_count = change_count + $11::int,
            updated_at = now()
        WHERE business_id = $1 AND id = $2 RETURNING {BOOKING_COLUMNS}
        """,
        booking["business_id"],
        booking["id"],
        placed[0]["staff_id"],
        placed[0]["resource_id"],
        placed[0]["service_id"],
        placed[0]["starts_at"],
        placed[-1]["ends_at"],
        min(s["blocked_from"] for s in placed),
        max(s["blocked_until"] for s in placed),
        1 if moved else 0,
        1 if moved and count_change else 0,
    )
    assert row is not None
    return row
