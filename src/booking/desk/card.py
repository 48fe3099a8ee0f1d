"""The booking card: who, what, when, the policy's limits, and the free times to move to.

Reads only; the move itself is :func:`booking.bookings.changes.change_booking`, the one
move operation every path uses, with the one policy (:mod:`booking.bookings.policy`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from booking import db
from booking.access.principal import Principal
from booking.availability.context import load_service_context
from booking.availability.service import earliest_slots
from booking.availability.slots import FreeSlot
from booking.bookings.checks import actor, load_policy
from booking.bookings.policy import BookingFacts, Decision, decide_change
from booking.bookings.queries import get_booking
from booking.bookings.status import is_changeable
from booking.desk.related import Related, load_journey, load_related
from booking.errors import NotFound
from booking.guarantee.sql import STILL_LOST
from booking.journey.schemas import JourneyEntry

ALTERNATIVES = 6
SEARCH_DAYS = 14


@dataclass(frozen=True, slots=True)
class Card:
    booking: dict[str, Any]  # BOOKING_COLUMNS + names, at_risk, offer
    tz: ZoneInfo
    alternatives: list[FreeSlot]
    staff_names: dict[UUID, str]
    eligible_staff: list[tuple[UUID, str]]
    decision: Decision | None  # None: the booking cannot move at all (its status)
    max_changes: int
    cutoff_at: datetime
    history: list[dict[str, Any]] = field(default_factory=list)
    day: date | None = None
    staff_filter: UUID | None = None
    related: Related = field(default_factory=Related)
    journey: list[JourneyEntry] = field(default_factory=list)


async def load_card(
    principal: Principal,
    booking_id: UUID,
    *,
    day: date | None = None,
    staff_id: UUID | None = None,
) -> Card:
    """The card for a booking the principal may see (another tenant's: NotFound)."""
    row = await get_booking(principal, booking_id)
    async with db.connection() as conn:
        extra = await conn.fetchrow(
            f"""
            SELECT c.name AS customer_name, c.phone AS customer_phone, sv.name AS service_name,
                   st.name AS staff_name, bz.time_zone, bz.locale AS business_locale,
                   r.name AS resource_name,
                   (b.at_risk_since IS NOT NULL AND {STILL_LOST}) AS at_risk,
                   b.at_risk_reason,
                   (SELECT o.expires_at FROM reschedule_offer o WHERE o.booking_id = b.id
                      AND o.status = 'open' ORDER BY o.expires_at LIMIT 1) AS offer_expires_at
            FROM booking b
            JOIN business bz ON bz.id = b.business_id
            JOIN customer c ON c.business_id = b.business_id AND c.id = b.customer_id
            JOIN service sv ON sv.business_id = b.business_id AND sv.id = b.service_id
            LEFT JOIN staff st ON st.business_id = b.business_id AND st.id = b.staff_id
            LEFT JOIN resource r ON r.business_id = b.business_id AND r.id = b.resource_id
            WHERE b.business_id = $1 AND b.id = $2
            """,
            row["business_id"],
            booking_id,
        )
        if extra is None:
            raise NotFound("No such booking.")
        booking = row | dict(extra)
        tz = ZoneInfo(booking["time_zone"])
        staff_rows = await conn.fetch(
            "SELECT s.id, s.name FROM staff s JOIN service_staff ss ON ss.business_id = "
            "s.business_id AND ss.staff_id = s.id WHERE s.business_id = $1 AND "
            "ss.service_id = $2 AND s.active ORDER BY s.name, s.id",
            row["business_id"],
            row["service_id"],
        )
        eligible = [(r["id"], r["name"]) for r in staff_rows]
        if staff_id is not None and staff_id not in {s for s, _ in eligible}:
            staff_id = None
        policy = await load_policy(conn, row["business_id"])
        alternatives: list[FreeSlot] = []
        decision: Decision | None = None
        now = datetime.now(UTC)
        if is_changeable(row["status"]):
            context = await load_service_context(
                conn,
                row["business_id"],
                row["service_id"],
                hours_for=(staff_id,) if staff_id else None,
            )
            if day is not None:
                start = max(now, datetime.combine(day, time(0), tzinfo=tz))
                end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
            else:
                start, end = now, now + timedelta(days=SEARCH_DAYS)
            if end > start:
                alternatives = await earliest_slots(
                    conn,
                    context,
                    start,
                    end,
                    ALTERNATIVES,
                    now=now,
                    apply_notice=not principal.is_staff,
                    exclude_booking=booking_id,
                )
            decision = decide_change(
                policy,
                BookingFacts.from_row(row),
                actor=actor(principal),
                now=now,
                new_starts_at=alternatives[0].starts_at if alternatives else now + timedelta(1),
            )
        history = await conn.fetch(
            """
            SELECT h.occurred_at, h.event, h.actor_type, h.actor_id, h.reason,
                   h.policy_override, k.name AS key_name
            FROM booking_history h
            LEFT JOIN api_key k ON h.actor_type = 'staff' AND k.id::text = h.actor_id
            WHERE h.business_id = $1 AND h.booking_id = $2 ORDER BY h.id DESC LIMIT 10
            """,
            row["business_id"],
            booking_id,
        )
        related = await load_related(conn, booking, now)
    journey = await load_journey(principal, booking_id)
    return Card(
        booking=booking,
        tz=tz,
        alternatives=alternatives,
        staff_names=dict(eligible),
        eligible_staff=eligible,
        decision=decision,
        max_changes=policy.max_changes,
        cutoff_at=row["starts_at"] - policy.cutoff,
        history=[dict(h) for h in history],
        day=day,
        staff_filter=staff_id,
        related=related,
        journey=journey,
    )
