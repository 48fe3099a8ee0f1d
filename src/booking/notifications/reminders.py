"""Reminders as rows with due times, drained by a cron job.

A reminder belongs to one start time of one booking (``booking_starts_at``).
:func:`sync_reminders` brings a booking's rows in line with the booking after
every event: a moved booking's old rows are cancelled and new ones scheduled; a
cancelled or finished booking has none left; a due time already past is never
scheduled. :func:`take_due_reminders` turns due rows into messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from uuid import UUID

import asyncpg

from booking.bookings.status import CHANGEABLE
from booking.outbox.dispatch import FollowUpJob

REMINDER_TEMPLATE = "reminder"
# Statuses that still expect the customer: pending and confirmed bookings.
REMINDABLE = CHANGEABLE


async def sync_reminders(conn: asyncpg.Connection, booking_id: UUID) -> None:
    """Cancel reminders that no longer fit the booking and schedule the missing ones."""
    await sync_reminders_of(conn, [booking_id])


async def sync_reminders_of(conn: asyncpg.Connection, booking_ids: Sequence[UUID]) -> None:
    """:func:`sync_reminders` for several bookings in one statement (the relay runs it
    once per pass, for the bookings of the pass's events).

    The bookings are read ``FOR SHARE`` (in id order) - a change committing meanwhile
    waits for us, or we read its result, so an older event can never overwrite a newer
    booking's reminders - then the rows of other start times (all of them, once a
    booking is no longer remindable) are cancelled and the missing ones for its start
    time inserted. The rows to cancel are found by ``booking_id = ANY($1)`` itself, not
    by a join on the read rows only: joined, a planner with stale statistics (a freshly
    filled table) scanned every scheduled reminder of the system for each event. The two
    parts touch different rows (other start times / this start time), as one statement's
    parts must.
    """
    ids = sorted(set(booking_ids))
    if not ids:
        return
    await conn.execute(
        """
        WITH b AS MATERIALIZED (
            SELECT b.id, b.business_id, b.starts_at, b.status = ANY($2::text[]) AS active,
                   biz.reminder_offsets_minutes AS offsets
            FROM booking b JOIN business biz ON biz.id = b.business_id
            WHERE b.id = ANY($1::uuid[]) ORDER BY b.id FOR SHARE OF b
        ), cancelled AS (
            UPDATE reminder r SET status = 'cancelled', processed_at = now()
            FROM b
            WHERE r.booking_id = ANY($1::uuid[]) AND r.booking_id = b.id
              AND r.business_id = b.business_id AND r.status = 'scheduled'
              AND (NOT b.active OR r.booking_starts_at <> b.starts_at)
        )
        -- A booking moved away and back again gets its cancelled rows back.
        INSERT INTO reminder (business_id, booking_id, booking_starts_at, offset_minutes, due_at)
        SELECT b.business_id, b.id, b.starts_at, o.minutes,
               b.starts_at - make_interval(mins => o.minutes)
        FROM b, LATERAL (SELECT DISTINCT unnest(b.offsets) AS minutes) AS o
        WHERE b.active AND o.minutes > 0
          AND b.starts_at - make_interval(mins => o.minutes) > now()
        ON CONFLICT (business_id, booking_id, booking_starts_at, offset_minutes) DO UPDATE
            SET status = 'scheduled', processed_at = NULL
            WHERE reminder.status = 'cancelled'
        """,
        ids,
        sorted(REMINDABLE),
    )


# booking.notifications.service.queue_sms, passed in: the service syncs reminders, so
# this module does not import it back.
QueueSms = Callable[..., Awaitable[FollowUpJob | None]]


async def take_due_reminders(
    conn: asyncpg.Connection, queue_sms: QueueSms, batch: int = 200
) -> tuple[int, list[FollowUpJob]]:
    """Queue the SMS of due reminders (in the caller's transaction): (rows taken, send jobs)."""
    rows = await conn.fetch(
        """
        SELECT r.id, r.business_id, r.booking_id, r.booking_starts_at, b.status, b.starts_at,
               EXISTS (SELECT 1 FROM session s WHERE s.business_id = b.business_id
                       AND s.id = b.session_id AND s.status = 'cancelled') AS class_cancelled
        FROM reminder r JOIN booking b ON b.business_id = r.business_id AND b.id = r.booking_id
        WHERE r.status = 'scheduled' AND r.due_at <= now()
        ORDER BY r.due_at
        LIMIT $1
        FOR UPDATE OF r SKIP LOCKED
        """,
        batch,
    )
    jobs: list[FollowUpJob] = []
    for row in rows:
        if row["status"] not in REMINDABLE or row["starts_at"] != row["booking_starts_at"]:
            outcome, message_id = "cancelled", None  # the event's handler will catch up
        elif row["class_cancelled"]:
            # The attendee of a cancelled class has an offer instead; moving to another
            # class re-plans the reminders for its time (sync_reminders).
            outcome, message_id = "cancelled", None
        elif row["starts_at"] <= await conn.fetchval("SELECT now()"):
            outcome, message_id = "skipped", None  # the worker was down past the start
        else:
            job = await queue_sms(
                conn,
                booking_id=row["booking_id"],
                template=REMINDER_TEMPLATE,
                dedupe_key=f"reminder:{row['id']}",
            )
            message_id = await conn.fetchval(
                "SELECT id FROM message WHERE business_id = $1 AND dedupe_key = $2",
                row["business_id"],
                f"reminder:{row['id']}",
            )
            outcome = "sent"
            if job is not None:
                jobs.append(job)
        await conn.execute(
            "UPDATE reminder SET status = $2, message_id = $3, processed_at = now() WHERE id = $1",
            row["id"],
            outcome,
            message_id,
        )
    return len(rows), jobs
