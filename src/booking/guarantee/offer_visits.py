"""Reschedule offers for a visit (a sequence of services): when one of its segments is
lost, hold the whole visit at up to three other starts where every segment fits.

Each option is a ``held`` visit: a booking row (``is_sequence``) with its own segments,
written by ``bookings.segments`` like any visit, so each held segment takes its staff
and room under ``allocation_no_overlap`` until the hold expires or is released (its
status flips the segments' allocations). Accepting re-places the booked visit's
segments exactly where the chosen hold's were, after the hold gave them back, in one
transaction; if one could not be placed nothing changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from booking.access.principal import Principal
from booking.bookings.segments import (
    PlannedSegment,
    insert_visit,
    place_segments,
    remove_segments,
    segments_of,
    settle_visit,
)
from booking.bookings.store import record_event
from booking.errors import SlotTaken
from booking.guarantee.offer_rows import GUARANTEE
from booking.sequences.availability import find_starts
from booking.sequences.service import visit_request

# Where alternatives are looked for around the lost start (the whole visit must fit).
BEFORE = timedelta(days=2)
AFTER = timedelta(days=5)


def _plan_of(segments: list[asyncpg.Record]) -> list[PlannedSegment]:
    """The segments exactly as they are (same staff and room): a hold's, to move into."""
    return [
        PlannedSegment(
            s["position"],
            s["service_id"],
            s["starts_at"],
            s["ends_at"],
            s["blocked_from"],
            s["blocked_until"],
            (s["staff_id"],),
            (s["resource_id"],) if s["resource_id"] is not None else (),
        )
        for s in segments
    ]


async def hold_visit_options(
    conn: asyncpg.Connection,
    booking: asyncpg.Record | dict[str, Any],
    expires_at: datetime,
    wanted: int,
) -> list[dict[str, Any]]:
    """Hold the visit at up to ``wanted`` starts nearest its own where every segment
    fits (caller's transaction); a start taken since it was found is skipped."""
    business_id = booking["business_id"]
    booked = await segments_of(conn, business_id, booking["id"])
    if not booked:
        return []
    request = visit_request(booked)
    lost = booking["starts_at"]
    now = datetime.now(UTC)
    found = await find_starts(
        conn, business_id, request, max(now, lost - BEFORE), lost + AFTER, apply_notice=False
    )
    found.sort(key=lambda f: (abs(f["starts_at"] - lost), f["starts_at"]))
    held: list[dict[str, Any]] = []
    for candidate in found:
        if len(held) >= wanted:
            break
        if candidate["starts_at"] == lost:
            continue
        shift = candidate["starts_at"] - lost
        by_position = {s["position"]: s for s in candidate["segments"]}
        plan = [
            PlannedSegment(
                s["position"],
                s["service_id"],
                s["starts_at"] + shift,
                s["ends_at"] + shift,
                s["blocked_from"] + shift,
                s["blocked_until"] + shift,
                (by_position[s["position"]]["staff_id"],),
                (by_position[s["position"]]["resource_id"],)
                if by_position[s["position"]]["resource_id"] is not None
                else (),
            )
            for s in booked
        ]
        try:
            # A savepoint: a segment taken meanwhile (or by an option held just before)
            # drops this start without aborting the caller's transaction.
            async with conn.transaction():
                hold = await insert_visit(
                    conn,
                    business_id,
                    plan,
                    customer_id=booking["customer_id"],
                    status="held",
                    channel="system",
                    partner_id=None,
                    created_by=GUARANTEE.actor_label,
                    notes=f"held for booking {booking['reference_code']}",
                    hold_expires_at=expires_at,
                )
                placed = await place_segments(conn, business_id, hold["id"], plan)
                if placed is None:
                    raise _NotPlaced
                hold = await settle_visit(conn, hold, placed, moved=False)
                await record_event(conn, hold, "hold.created", GUARANTEE, "system")
        except _NotPlaced:
            continue
        held.append(dict(hold))
    return held


class _NotPlaced(Exception):
    """A held visit's segment could not be placed: its savepoint is rolled back."""


async def take_held_visit(
    conn: asyncpg.Connection,
    booking: asyncpg.Record,
    hold: asyncpg.Record,
    principal: Principal,
    channel: str,
    reason: str | None,
    *,
    policy_override: bool,
) -> asyncpg.Record:
    """Move the visit into the segments of the hold that was just released (caller's
    transaction, the hold locked): same staff, rooms and times, or SlotTaken."""
    target = _plan_of(await segments_of(conn, booking["business_id"], hold["id"]))
    await remove_segments(conn, booking["business_id"], booking["id"])
    placed = await place_segments(conn, booking["business_id"], booking["id"], target)
    if placed is None:  # pragma: no cover - the hold kept the times until just now
        raise SlotTaken("That time is taken; your visit is unchanged.")
    moved = await settle_visit(conn, booking, placed, moved=True, count_change=False)
    await record_event(
        conn,
        moved,
        "booking.changed",
        principal,
        channel,
        from_status=booking["status"],
        changes={"starts_at": {"from": booking["starts_at"], "to": moved["starts_at"]}},
        reason=reason,
        policy_override=policy_override,
    )
    return moved
