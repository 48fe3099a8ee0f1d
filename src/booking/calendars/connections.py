"""A member of staff's outside calendars: connect (ICS URL or CalDAV), list, sync now,
disconnect. Managers do it for their staff (staff have no credentials of their own).
Disconnecting frees the busy time it brought and says so (a ``schedule.changed`` event)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from booking import db
from booking.access.principal import Principal
from booking.calendars import fetch
from booking.calendars.credentials import seal_password
from booking.calendars.sync import CONNECTION_COLUMNS, SyncReport, sync_connection
from booking.errors import InvalidInput, NotFound
from booking.outbound import OutboundPolicy, Refused
from booking.schedule_changes import schedule_changed


async def _check_staff(business_id: UUID, staff_id: UUID) -> None:
    async with db.connection() as conn:
        found = await conn.fetchval(
            "SELECT 1 FROM staff WHERE business_id = $1 AND id = $2", business_id, staff_id
        )
    if found is None:
        raise NotFound("No such member of staff at this business.")


async def connect(
    principal: Principal,
    business_id: UUID,
    staff_id: UUID,
    *,
    kind: str,
    url: str,
    username: str = "",
    password: str = "",
    email: str | None = None,
    write_back: bool = False,
    policy: OutboundPolicy | None = None,
) -> tuple[dict[str, Any], SyncReport]:
    """Store the connection (a URL the outbound policy refuses is a 422, nothing stored)
    and run its first sync; a source that fails is a status on the connection."""
    principal.require_manager(business_id)
    await _check_staff(business_id, staff_id)
    if write_back and kind != "caldav":
        raise InvalidInput("Write-back needs a CalDAV calendar.", field="write_back")
    target = fetch.normalise_url(url)
    checked = policy or OutboundPolicy.from_settings()
    try:
        await checked.check(target)
    except Refused as exc:
        raise InvalidInput(
            f"{fetch.MESSAGES.get(exc.error_class, 'The URL is not allowed')}: {exc.detail}",
            field="url",
            error_class=exc.error_class,
        ) from exc
    async with db.connection() as conn:
        row = await conn.fetchrow(
            f"""
            INSERT INTO calendar_connection AS c (business_id, staff_id, kind, url, username,
                password_sealed, email, write_back, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {CONNECTION_COLUMNS}
            """,
            business_id,
            staff_id,
            kind,
            target,
            username,
            seal_password(password),
            email,
            write_back,
            principal.actor_label,
        )
    assert row is not None
    report = await sync_connection(business_id, row["id"], policy=checked)
    return await get_connection(principal, business_id, staff_id, row["id"]), report


async def get_connection(
    principal: Principal, business_id: UUID, staff_id: UUID, connection_id: UUID
) -> dict[str, Any]:
    principal.require_manager(business_id)
    async with db.connection() as conn:
        row = await conn.fetchrow(
            f"""
            SELECT {CONNECTION_COLUMNS},
                   (SELECT count(*) FROM time_off t WHERE t.business_id = c.business_id
                      AND t.calendar_connection_id = c.id AND t.ends_at > now()) AS busy_blocks
            FROM calendar_connection c
            WHERE c.business_id = $1 AND c.staff_id = $2 AND c.id = $3
            """,
            business_id,
            staff_id,
            connection_id,
        )
    if row is None:
        raise NotFound("No such calendar connection.")
    return dict(row)


async def list_connections(
    principal: Principal, business_id: UUID, staff_id: UUID
) -> list[dict[str, Any]]:
    principal.require_manager(business_id)
    await _check_staff(business_id, staff_id)
    async with db.connection() as conn:
        ids = await conn.fetch(
            "SELECT id FROM calendar_connection WHERE business_id = $1 AND staff_id = $2 "
            "ORDER BY created_at, id",
            business_id,
            staff_id,
        )
    return [await get_connection(principal, business_id, staff_id, r["id"]) for r in ids]


async def sync_now(
    principal: Principal,
    business_id: UUID,
    staff_id: UUID,
    connection_id: UUID,
    *,
    policy: OutboundPolicy | None = None,
) -> tuple[dict[str, Any], SyncReport]:
    await get_connection(principal, business_id, staff_id, connection_id)
    report = await sync_connection(business_id, connection_id, policy=policy, force=True)
    return await get_connection(principal, business_id, staff_id, connection_id), report


async def disconnect(
    principal: Principal, business_id: UUID, staff_id: UUID, connection_id: UUID
) -> None:
    """Remove the connection and the busy time it brought; what those blocks covered gets
    its time back where nothing else holds it (the time off delete trigger)."""
    await get_connection(principal, business_id, staff_id, connection_id)
    async with db.transaction() as conn:
        await conn.execute(
            "SELECT 1 FROM staff WHERE business_id = $1 AND id = $2 FOR UPDATE",
            business_id,
            staff_id,
        )
        span = await conn.fetchrow(
            "SELECT min(starts_at) AS starts_at, max(ends_at) AS ends_at FROM time_off "
            "WHERE business_id = $1 AND calendar_connection_id = $2 AND ends_at > now()",
            business_id,
            connection_id,
        )
        await conn.execute(
            "DELETE FROM calendar_connection WHERE business_id = $1 AND id = $2",
            business_id,
            connection_id,
        )
        if span is not None and span["starts_at"] is not None:  # its busy time is free again
            await schedule_changed(
                conn,
                business_id,
                "calendar_busy",
                span["starts_at"],
                span["ends_at"],
                aggregate_id=staff_id,
            )
