"""Optional write-back: a member of staff's bookings also in their own CalDAV calendar.

Driven by the outbox like SMS: :func:`on_booking_event` (in ``worker.OUTBOX_HANDLERS``)
turns a committed booking event into one ``calendar_write_back`` job with a deterministic
id, so a relay rerun enqueues nothing twice and a crash only delays it. The job does not
replay the event: it reads the booking as it is now and makes each write-back calendar
agree with it (PUT ``<booking id>.ics`` with UID ``<booking id>@booking`` where the
booking should be, DELETE where it should not be any more, e.g. after a cancel or a move
to another member of staff), then records what it wrote in ``calendar_written``. Running
it twice, or two of them out of order, leaves each calendar with the booking exactly
once, in its latest version. A failed write is retried with backoff (arq ``Retry``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import icalendar
from arq import Retry

from booking import db
from booking.calendars import fetch
from booking.calendars.credentials import password_of
from booking.outbox.dispatch import FollowUpJob, OutboxEvent, once_per_transaction

WRITE_JOB = "calendar_write_back"
VISIBLE = ("pending", "confirmed", "checked_in", "completed", "no_show")
MAX_TRIES = 8


# Does the business write bookings to a calendar, and has it ever (a written event must
# still be updated or removed after write-back is switched off)?
_BUSINESS_WRITES = (
    "SELECT EXISTS (SELECT 1 FROM calendar_connection WHERE business_id = $1 AND write_back) "
    "AS write_back, EXISTS (SELECT 1 FROM calendar_written WHERE business_id = $1) AS written"
)


async def on_booking_event(conn: asyncpg.Connection, event: OutboxEvent) -> list[FollowUpJob]:
    """A booking event of a business with write-back calendars -> one write-back job."""
    if not event.topic.startswith("booking.") or event.aggregate_id is None:
        return []
    if event.business_id is None:
        return []
    business_id, booking_id = event.business_id, event.aggregate_id
    # Once per relay pass: most businesses write to no calendar, and never have.
    writes = await once_per_transaction(
        ("calendar.write_back", business_id),
        lambda: conn.fetchrow(_BUSINESS_WRITES, business_id),
    )
    wanted = writes["write_back"] or (
        writes["written"]
        and await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM calendar_written WHERE business_id = $1 "
            "AND booking_id = $2)",
            business_id,
            booking_id,
        )
    )
    if not wanted:
        return []
    return [
        FollowUpJob(
            function=WRITE_JOB,
            job_id=f"calendar-write:{event.id}",
            args=(str(event.business_id), str(event.aggregate_id)),
        )
    ]


def booking_ics(row: asyncpg.Record | dict[str, Any]) -> str:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//booking//write-back//EN")
    cal.add("version", "2.0")
    event = icalendar.Event()
    event.add("uid", f"{row['id']}@booking")
    event.add("dtstamp", row["updated_at"].astimezone(UTC))
    event.add("sequence", row["version"])
    event.add("dtstart", row["starts_at"].astimezone(UTC))
    event.add("dtend", row["ends_at"].astimezone(UTC))
    event.add("summary", f"{row['first_name'] or 'Walk-in'} - {row['service_name']}")
    event.add("status", "TENTATIVE" if row["status"] == "pending" else "CONFIRMED")
    cal.add_component(event)
    return str(cal.to_ical().decode())


async def _plan(business_id: UUID, booking_id: UUID) -> tuple[Any, list[Any], list[Any]]:
    async with db.connection() as conn:
        booking = await conn.fetchrow(
            """
            SELECT b.id, b.staff_id, b.status, b.version, b.starts_at, b.ends_at, b.updated_at,
                   s.name AS service_name, split_part(btrim(c.name), ' ', 1) AS first_name
            FROM booking b
            JOIN service s ON s.business_id = b.business_id AND s.id = b.service_id
            LEFT JOIN customer c ON c.business_id = b.business_id AND c.id = b.customer_id
            WHERE b.business_id = $1 AND b.id = $2
            """,
            business_id,
            booking_id,
        )
        targets = await conn.fetch(
            "SELECT id, url, username, password_sealed FROM calendar_connection "
            "WHERE business_id = $1 AND write_back AND staff_id = $2",
            business_id,
            booking["staff_id"] if booking is not None else None,
        )
        written = await conn.fetch(
            "SELECT w.connection_id, w.version, c.url, c.username, c.password_sealed "
            "FROM calendar_written w JOIN calendar_connection c "
            "ON c.business_id = w.business_id AND c.id = w.connection_id "
            "WHERE w.business_id = $1 AND w.booking_id = $2",
            business_id,
            booking_id,
        )
    visible = booking is not None and booking["status"] in VISIBLE
    return booking, list(targets) if visible else [], list(written)


async def write_back(business_id: UUID, booking_id: UUID) -> dict[str, int]:
    """Make every write-back calendar agree with the booking as it is now."""
    booking, targets, written = await _plan(business_id, booking_id)
    href = f"{booking_id}.ics"
    done = {"written": 0, "deleted": 0}
    keep = {row["id"] for row in targets}
    if targets:
        ics = booking_ics(booking)
        for target in targets:
            await asyncio.to_thread(
                fetch.write_event,
                target["url"],
                target["username"],
                password_of(target),
                href,
                ics,
            )
            async with db.connection() as conn:
                await conn.execute(
                    """
                    INSERT INTO calendar_written (business_id, connection_id, booking_id, version)
                    VALUES ($1, $2, $3, $4)
                    ON CONFLICT (business_id, connection_id, booking_id)
                    DO UPDATE SET version = EXCLUDED.version, written_at = now()
                    """,
                    business_id,
                    target["id"],
                    booking_id,
                    booking["version"],
                )
            done["written"] += 1
    for row in written:
        if row["connection_id"] in keep:
            continue
        await asyncio.to_thread(
            fetch.delete_event, row["url"], row["username"], password_of(row), href
        )
        async with db.connection() as conn:
            await conn.execute(
                "DELETE FROM calendar_written WHERE business_id = $1 AND connection_id = $2 "
                "AND booking_id = $3",
                business_id,
                row["connection_id"],
                booking_id,
            )
        done["deleted"] += 1
    return done


async def calendar_write_back(ctx: dict[str, Any], business_id: str, booking_id: str) -> str:
    """arq job: see :func:`write_back`; a CalDAV failure is retried with backoff."""
    try:
        done = await write_back(UUID(business_id), UUID(booking_id))
    except (fetch.FetchFailed, OSError, ValueError) as exc:
        tries = int(ctx.get("job_try", 1))
        if tries >= MAX_TRIES:
            raise
        raise Retry(defer=min(300, 2**tries)) from exc
    except Exception as exc:  # the caldav client raises its own DAVError family
        if type(exc).__module__.startswith("caldav") and int(ctx.get("job_try", 1)) < MAX_TRIES:
            raise Retry(defer=min(300, 2 ** int(ctx.get("job_try", 1)))) from exc
        raise
    return f"written {done['written']}, deleted {done['deleted']} at {datetime.now(UTC):%H:%M:%S}"
