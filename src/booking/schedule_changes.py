"""``schedule.changed``: the outbox event of a calendar change that may open or close
slots of a business - weekly working hours, a dated exception (closed day, special
opening), time off and busy time from a staff member's own calendar, staff deactivated
or reactivated, a resource added, regrouped or (de)activated, a service's staff, length
or needs, the business's time zone.

Written by the change itself, in its transaction (:func:`schedule_changed`), so the
event exists exactly when the change does. The payload names the span whose slots may
differ, ``from`` / ``to`` (RFC 3339, UTC): the time off's own span, a dated exception's
day, or - for a change of the week's shape - :data:`WHOLE_HORIZON` from now, which is at
least the longest horizon a marketplace listing's feed covers. Its consumer is the
marketplace's availability update (``marketplace.inventory.on_schedule_changed``), which
widens the span by the longest a slot can reach into it and bounds it by each listing's
own horizon. It is no partner webhook topic (``webhooks.schemas.EventType``) and sends
no SMS: the other handlers ignore it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from booking.telemetry.context import traced_payload
from booking.wire_time import stored_json

SCHEDULE_CHANGED = "schedule.changed"
# At least the longest feed horizon a listing may ask for (marketplace.listing: 365 days).
WHOLE_HORIZON = timedelta(days=366)


async def schedule_changed(
    conn: asyncpg.Connection,
    business_id: UUID,
    cause: str,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    *,
    aggregate_id: UUID | None = None,
) -> None:
    """One ``schedule.changed`` row in the caller's transaction; without a span, the whole
    horizon from now (a change of the week, of staff or of a service)."""
    if starts_at is None or ends_at is None:
        starts_at = datetime.now(UTC)
        ends_at = starts_at + WHOLE_HORIZON
    payload = traced_payload(
        {
            "event": SCHEDULE_CHANGED,
            "cause": cause,
            "from": starts_at.astimezone(UTC).isoformat(),
            "to": ends_at.astimezone(UTC).isoformat(),
        }
    )
    await conn.execute(
        "INSERT INTO outbox (business_id, topic, aggregate_id, payload) "
        "VALUES ($1, $2, $3, $4::jsonb)",
        business_id,
        SCHEDULE_CHANGED,
        aggregate_id,
        stored_json(payload),
    )


async def day_changed(
    conn: asyncpg.Connection, business_id: UUID, cause: str, day: date, *, aggregate_id: UUID
) -> None:
    """The event for one calendar day of the business (its wall-clock midnight to the next)."""
    zone = ZoneInfo(
        await conn.fetchval("SELECT time_zone FROM business WHERE id = $1", business_id)
    )
    begins = datetime.combine(day, time(0), tzinfo=zone)
    ends = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    await schedule_changed(conn, business_id, cause, begins, ends, aggregate_id=aggregate_id)
