"""Booking, moving and finding times for a sequence (service A then service B).

A visit is planned segment by segment from its start (each segment's start is the
previous one's end plus its gap); the database takes each segment's staff and room
under ``allocation_no_overlap`` and the whole visit is one transaction
(``bookings.segments``). The reference code is the visit's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.availability.context import ServiceContext, load_service_context
from booking.availability.resources import pick_resources
from booking.bookings.checks import (
    CustomerInput,
    actor,
    as_utc,
    channel_for,
    check_access,
    check_notice,
    check_version,
    load_policy,
)
from booking.bookings.placing import candidate_staff
from booking.bookings.policy import BookingFacts, check_changeable, decide_change
from booking.bookings.segments import (
    PlannedSegment,
    insert_visit,
    place_segments,
    remove_segments,
    segments_of,
    settle_visit,
)
from booking.bookings.store import lock_booking, record_event
from booking.customers import upsert_customer
from booking.errors import InvalidInput, NotFound, SlotTaken

MAX_VISIT = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class SegmentRequest:
    service_id: UUID
    staff_id: UUID | None = None
    resource_id: UUID | None = None
    gap_after_minutes: int = 0


async def _contexts(
    conn: asyncpg.Connection, business_id: UUID, wanted: list[SegmentRequest]
) -> list[ServiceContext]:
    return [await load_service_context(conn, business_id, s.service_id) for s in wanted]


def _times(
    contexts: list[ServiceContext], wanted: list[SegmentRequest], starts_at: datetime
) -> list[tuple[datetime, datetime, datetime, datetime]]:
    """(start, end, blocked from, blocked until) of each segment from the visit's start."""
    times = []
    at = starts_at
    for context, segment in zip(contexts, wanted, strict=True):
        end = at + context.shape.duration
        times.append((at, end, at - context.shape.buffer_before, end + context.shape.buffer_after))
        at = end + timedelta(minutes=segment.gap_after_minutes)
    if times[-1][1] - times[0][0] > MAX_VISIT:
        raise InvalidInput("A visit may last at most 12 hours.", field="segments")
    return times


async def _plan(
    conn: asyncpg.Connection,
    contexts: list[ServiceContext],
    wanted: list[SegmentRequest],
    starts_at: datetime,
    prefer: dict[int, tuple[UUID, UUID | None]] | None = None,
) -> list[PlannedSegment]:
    plan = []
    for position, (context, segment, (start, end, b_from, b_until)) in enumerate(
        zip(contexts, wanted, _times(contexts, wanted, starts_at), strict=True), start=1
    ):
        try:
            staff = await candidate_staff(conn, context, segment.staff_id, start, end)
        except InvalidInput as refused:
            raise InvalidInput(
                f"Segment {position}: {refused.detail}", field=f"segments[{position - 1}]"
            ) from None
        resources = list(
            pick_resources(context.resource_group, context.resources, segment.resource_id)
        )
        kept = (prefer or {}).get(position)
        if kept is not None:  # a move keeps the same person (and room) when free
            if kept[0] in staff:
                staff.remove(kept[0])
                staff.insert(0, kept[0])
            if kept[1] in resources:
                resources.remove(kept[1])
                resources.insert(0, kept[1])
        plan.append(
            PlannedSegment(
                position,
                context.service_id,
                start,
                end,
                b_from,
                b_until,
                tuple(staff),
                tuple(resources),
            )
        )
    return plan


def _validated(starts_at: datetime, wanted: list[SegmentRequest]) -> datetime:
    if not 2 <= len(wanted) <= 5:
        raise InvalidInput("A sequence has 2 to 5 segments.", field="segments")
    if wanted[-1].gap_after_minutes:
        raise InvalidInput(
            "The last segment has no next one to wait for (gap_after_minutes must be 0).",
            field="segments",
        )
    return as_utc(starts_at, "starts_at")


async def book_sequence(
    principal: Principal,
    business_id: UUID,
    starts_at: datetime,
    wanted: list[SegmentRequest],
    customer: CustomerInput,
    *,
    channel: str | None = None,
    notes: str = "",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    principal.require("bookings:write", business_id)
    starts_at = _validated(starts_at, wanted)
    chosen_channel = channel_for(principal, channel)
    async with db.transaction() as conn:
        contexts = await _contexts(conn, business_id, wanted)
        check_notice(contexts[0], principal, starts_at)
        plan = await _plan(conn, contexts, wanted, starts_at)
        customer_id = await upsert_customer(
            conn,
            business_id,
            name=customer.name,
            phone=customer.phone,
            locale=customer.locale,
            business_locale=contexts[0].locale,
        )
        confirm = any(c.requires_confirmation for c in contexts)
        visit = await insert_visit(
            conn,
            business_id,
            plan,
            customer_id=customer_id,
            status="pending" if confirm else "confirmed",
            channel=chosen_channel,
            partner_id=principal.partner_id,
            created_by=principal.actor_label,
            notes=notes,
        )
        placed = await place_segments(conn, business_id, visit["id"], plan)
        if placed is None:
            raise _Taken
        visit = await settle_visit(conn, visit, placed, moved=False)
        await record_event(
            conn,
            visit,
            "booking.created",
            principal,
            chosen_channel,
            changes={"segments": len(placed)},
        )
    return dict(visit), [dict(s) for s in placed]


class _Taken(SlotTaken):
    def __init__(self) -> None:
        super().__init__("A segment of that visit is taken; nothing was booked.")


def visit_request(segments: list[asyncpg.Record]) -> list[SegmentRequest]:
    """The services and gaps of a booked visit, to find it another start."""
    return [
        SegmentRequest(
            s["service_id"],
            gap_after_minutes=int(
                (segments[i + 1]["starts_at"] - s["ends_at"]).total_seconds() // 60
            )
            if i + 1 < len(segments)
            else 0,
        )
        for i, s in enumerate(segments)
    ]


async def move_sequence(
    principal: Principal,
    booking_id: UUID,
    starts_at: datetime,
    *,
    override_reason: str | None = None,
    expected_version: int | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Move the whole visit to ``starts_at`` in one transaction: the old segments are
    released and the new ones taken; if one cannot be placed nothing changes."""
    starts_at = as_utc(starts_at, "starts_at")
    try:
        async with db.transaction() as conn:
            row = await lock_booking(conn, booking_id)
            check_access(principal, row)
            if principal.kind != "customer":
                principal.require("bookings:change", row["business_id"])
            check_version(row, expected_version)
            check_changeable(row["status"]).enforce()
            old = await segments_of(conn, row["business_id"], booking_id)
            if not old:
                raise InvalidInput("That booking is not a sequence.", field="booking_id")
            wanted = visit_request(old)
            decision = decide_change(
                await load_policy(conn, row["business_id"]),
                BookingFacts.from_row(row),
                actor=actor(principal),
                now=datetime.now(UTC),
                new_starts_at=starts_at,
                override_reason=override_reason,
            ).enforce()
            contexts = await _contexts(conn, row["business_id"], wanted)
            await remove_segments(conn, row["business_id"], booking_id)
            plan = await _plan(
                conn,
                contexts,
                wanted,
                starts_at,
                prefer={s["position"]: (s["staff_id"], s["resource_id"]) for s in old},
            )
            placed = await place_segments(conn, row["business_id"], booking_id, plan)
            if placed is None:
                raise _Taken
            moved = await settle_visit(conn, row, placed, moved=True)
            await record_event(
                conn,
                moved,
                "booking.changed",
                principal,
                principal.default_channel,
                from_status=row["status"],
                changes={"starts_at": {"from": row["starts_at"], "to": moved["starts_at"]}},
                reason=decision.history_reason(),
                policy_override=decision.policy_override,
            )
    except _Taken:
        raise SlotTaken("A segment is taken at that time; your visit is unchanged.") from None
    return dict(moved), [dict(s) for s in placed]


async def visit(
    principal: Principal, booking_id: UUID
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from booking.bookings.queries import get_booking

    booking = await get_booking(principal, booking_id)
    async with db.connection() as conn:
        rows = await segments_of(conn, booking["business_id"], booking_id)
    return booking, [dict(r) for r in rows]


async def staff_segments(
    principal: Principal,
    business_id: UUID,
    staff_id: UUID,
    range_from: datetime,
    range_to: datetime,
) -> list[dict[str, Any]]:
    """A member of staff's own segments of sequences in a range (what they see)."""
    principal.require("bookings:read", business_id)
    if not principal.is_staff:
        raise NotFound("No such member of staff.")
    async with db.connection() as conn:
        rows = await conn.fetch(
            """
            SELECT g.id, g.booking_id, g.position, g.service_id, g.staff_id, g.resource_id,
                   g.starts_at, g.ends_at
            FROM booking_segment g JOIN booking b
              ON b.business_id = g.business_id AND b.id = g.booking_id
            WHERE g.business_id = $1 AND g.staff_id = $2 AND g.starts_at < $4
              AND g.ends_at > $3 AND booking_holds_time(b.status)
            ORDER BY g.starts_at, g.id LIMIT 500
            """,
            business_id,
            staff_id,
            as_utc(range_from, "from"),
            as_utc(range_to, "to"),
        )
    return [dict(r) for r in rows]
