"""Busy times in: one sync of a staff member's outside calendar into block allocations.

Each busy occurrence is a ``time_off`` row tagged with its connection and a stable event
key, so it is a block allocation under the one exclusion constraint (trigger
``time_off_block_sync``): the database refuses any booking over it, a raw INSERT too.

* **Incremental and idempotent.** The source's version (ICS ``ETag`` with
  ``If-None-Match``; CalDAV ``sync-token`` or ``getctag``) unchanged: nothing is read
  again. Otherwise the wanted set of (key, start, end) is compared with the rows the
  connection has: new ones are inserted, vanished or moved ones deleted (the delete
  trigger gives covered blocks and lost bookings their time back), the rest untouched.
  Running the same sync twice changes nothing.
* **Never deletes a booking.** A new block over a booking releases only its allocation
  (``lost``); the booking then goes through the lost-slot recovery in the same
  transaction (at risk, held alternatives, the customer's offer SMS, the business sees
  it in the risk view) and the sync's report lists it. A booking already at risk is not
  offered twice.
* **The marketplace hears of it.** A sync that adds or removes blocks writes one
  ``schedule.changed`` event over their span in its transaction (booking.schedule_changes).
* **Bad input changes nothing.** An unreachable URL, a body that is no calendar, a feed
  over 10 MB, a malformed RRULE, a redirect to a private address: the sync stops before
  its transaction and only the connection's status (last error, last success) is written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from booking import db
from booking.access.principal import SYSTEM
from booking.bookings.store import BOOKING_COLUMNS
from booking.calendars import busy, fetch
from booking.calendars.credentials import password_of
from booking.errors import NotFound
from booking.guarantee.offers import open_lost_slot_offer
from booking.outbound import OutboundPolicy
from booking.schedule_changes import schedule_changed

SYNC_EVERY = timedelta(minutes=15)
EXPAND_AGAIN = timedelta(days=1)
RETRY_AFTER_ERROR = timedelta(minutes=30)
BUSY_REASON = "calendar: busy"
LOST_LABEL = "busy in the staff member's own calendar"


@dataclass(slots=True)
class SyncReport:
    connection_id: UUID
    status: str  # "synced" | "unchanged" | "error"
    added: int = 0
    removed: int = 0
    kept: int = 0
    conflicts: list[UUID] = field(default_factory=list)
    offer_ids: list[UUID] = field(default_factory=list)
    error: str | None = None


CONNECTION_COLUMNS = (
    "c.id, c.business_id, c.staff_id, c.kind, c.url, c.username, c.email, c.write_back, "
    "c.source_version, c.content_hash, c.last_attempt_at, c.last_success_at, c.last_error, "
    "c.last_error_at, c.next_sync_at, c.expanded_at, c.created_at"
)


async def _load(conn: asyncpg.Connection, business_id: UUID, connection_id: UUID) -> Any:
    row = await conn.fetchrow(
        f"SELECT {CONNECTION_COLUMNS}, c.password_sealed, b.time_zone FROM calendar_connection c "
        "JOIN business b ON b.id = c.business_id WHERE c.business_id = $1 AND c.id = $2",
        business_id,
        connection_id,
    )
    if row is None:
        raise NotFound("No such calendar connection.")
    return row


async def _read_source(
    policy: OutboundPolicy, connection: Any, version: str | None
) -> fetch.Fetched:
    if connection["kind"] == "ics":
        return await fetch.fetch_ics(policy, connection["url"], version)
    return await fetch.fetch_caldav(
        policy, connection["url"], connection["username"], password_of(connection), version
    )


def _digest(bodies: list[bytes]) -> str:
    hashed = hashlib.sha256()
    for body in sorted(bodies):
        hashed.update(hashlib.sha256(body).digest())
    return hashed.hexdigest()


async def sync_connection(
    business_id: UUID,
    connection_id: UUID,
    *,
    policy: OutboundPolicy | None = None,
    now: datetime | None = None,
    force: bool = False,
) -> SyncReport:
    """Read the connection's calendar and bring its blocks in line (see the module doc)."""
    checked = policy or OutboundPolicy.from_settings()
    moment = now or datetime.now(UTC)
    async with db.connection() as conn:
        connection = await _load(conn, business_id, connection_id)
    # Time moves the window: expand again at least daily even when the source is unchanged.
    expanded = connection["expanded_at"]
    force = force or expanded is None or moment - expanded >= EXPAND_AGAIN
    try:
        fetched = await _read_source(
            checked, connection, None if force else connection["source_version"]
        )
        digest = _digest(fetched.bodies) if fetched.bodies is not None else None
        if fetched.bodies is None or (digest == connection["content_hash"] and not force):
            return await _record_success(
                connection, fetched.version, connection["content_hash"], moment, "unchanged"
            )
        zone = ZoneInfo(connection["time_zone"])
        calendars = busy.parse_calendars(fetched.bodies)
        wanted = busy.busy_intervals(
            calendars, zone, moment, moment + busy.HORIZON, email=connection["email"]
        )
    except (fetch.FetchFailed, busy.CalendarUnreadable) as exc:
        return await _record_error(connection, exc.detail, moment)
    report = await _apply(connection, wanted, moment)
    await _record_success(connection, fetched.version, digest, moment, "synced", expanded=True)
    return report


async def _apply(connection: Any, wanted: list[busy.BusyInterval], moment: datetime) -> SyncReport:
    business_id, staff_id = connection["business_id"], connection["staff_id"]
    report = SyncReport(connection_id=connection["id"], status="synced")
    async with db.transaction() as conn:
        # The same lock time off takes: a sync and a manager's time off do not interleave.
        await conn.execute(
            "SELECT 1 FROM staff WHERE business_id = $1 AND id = $2 FOR UPDATE",
            business_id,
            staff_id,
        )
        existing = {
            row["calendar_event_key"]: row
            for row in await conn.fetch(
                "SELECT id, calendar_event_key, starts_at, ends_at FROM time_off "
                "WHERE business_id = $1 AND calendar_connection_id = $2 AND ends_at > $3",
                business_id,
                connection["id"],
                moment,
            )
        }
        existing_by_id = {row["id"]: row for row in existing.values()}
        wanted_by_key = {interval.key: interval for interval in wanted}
        stale = [
            row["id"]
            for key, row in existing.items()
            if key not in wanted_by_key
            or (row["starts_at"], row["ends_at"])
            != (wanted_by_key[key].starts_at, wanted_by_key[key].ends_at)
        ]
        fresh = [
            interval
            for interval in wanted
            if interval.key not in existing or existing[interval.key]["id"] in stale
        ]
        if stale:
            await conn.execute(
                "DELETE FROM time_off WHERE business_id = $1 AND id = ANY($2::uuid[])",
                business_id,
                stale,
            )
        if fresh:
            await conn.executemany(
                "INSERT INTO time_off (business_id, staff_id, starts_at, ends_at, reason, "
                "calendar_connection_id, calendar_event_key) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [
                    (
                        business_id,
                        staff_id,
                        i.starts_at,
                        i.ends_at,
                        BUSY_REASON,
                        connection["id"],
                        i.key,
                    )
                    for i in fresh
                ],
            )
        if stale or fresh:  # one event for the span of every block added or removed
            spans = [(existing_by_id[i]["starts_at"], existing_by_id[i]["ends_at"]) for i in stale]
            spans += [(i.starts_at, i.ends_at) for i in fresh]
            await schedule_changed(
                conn,
                business_id,
                "calendar_busy",
                min(start for start, _ in spans),
                max(end for _, end in spans),
                aggregate_id=staff_id,
            )
        report.added, report.removed = len(fresh), len(stale)
        report.kept = len(wanted) - len(fresh)
        if fresh:
            for booking in await _newly_lost(conn, business_id, staff_id):
                offer = await open_lost_slot_offer(conn, booking, LOST_LABEL, SYSTEM)
                report.conflicts.append(booking["id"])
                report.offer_ids.append(offer["id"])
    return report


async def _newly_lost(
    conn: asyncpg.Connection, business_id: UUID, staff_id: UUID
) -> list[asyncpg.Record]:
    """Future bookings of the staff member whose time a block just took (their allocation
    is ``lost``) and that are not in the lost-slot flow yet, locked."""
    return list(
        await conn.fetch(
            f"""
            SELECT {BOOKING_COLUMNS} FROM booking b
            WHERE b.business_id = $1 AND b.staff_id = $2 AND b.status IN ('pending', 'confirmed')
              AND b.starts_at > now() AND b.at_risk_since IS NULL
              AND EXISTS (SELECT 1 FROM allocation a WHERE a.business_id = b.business_id
                          AND a.booking_id = b.id AND a.resource_id = $2 AND a.lost)
            ORDER BY b.starts_at, b.id
            FOR UPDATE
            """,
            business_id,
            staff_id,
        )
    )


async def _record_success(
    connection: Any,
    version: str | None,
    digest: str | None,
    moment: datetime,
    status: str,
    *,
    expanded: bool = False,
) -> SyncReport:
    async with db.connection() as conn:
        await conn.execute(
            """
            UPDATE calendar_connection SET source_version = $3, content_hash = $4,
                last_attempt_at = $5::timestamptz, last_success_at = $5::timestamptz,
                last_error = NULL, last_error_at = NULL,
                next_sync_at = $5::timestamptz + $6::interval,
                expanded_at = CASE WHEN $7 THEN $5::timestamptz ELSE expanded_at END
            WHERE business_id = $1 AND id = $2
            """,
            connection["business_id"],
            connection["id"],
            version,
            digest,
            moment,
            SYNC_EVERY,
            expanded,
        )
    return SyncReport(connection_id=connection["id"], status=status)


async def _record_error(connection: Any, detail: str, moment: datetime) -> SyncReport:
    async with db.connection() as conn:
        await conn.execute(
            """
            UPDATE calendar_connection SET last_attempt_at = $3::timestamptz, last_error = $4,
                last_error_at = $3::timestamptz, next_sync_at = $3::timestamptz + $5::interval
            WHERE business_id = $1 AND id = $2
            """,
            connection["business_id"],
            connection["id"],
            moment,
            detail[:500],
            RETRY_AFTER_ERROR,
        )
    return SyncReport(connection_id=connection["id"], status="error", error=detail)


async def due_connections(limit: int = 50) -> list[tuple[UUID, UUID]]:
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT business_id, id FROM calendar_connection WHERE next_sync_at <= now() "
            "ORDER BY next_sync_at LIMIT $1",
            limit,
        )
    return [(row["business_id"], row["id"]) for row in rows]
