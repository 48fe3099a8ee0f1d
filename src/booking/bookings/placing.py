"""Placing a new booking or hold: who may take the time, on which service context, and
what the caller hears when the database says the time is taken.

The exclusion constraint ``allocation_no_overlap`` has the last word on whether a
time is free; its refusal becomes :class:`SlotTaken` with the nearest alternatives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.availability.context import (
    ServiceContext,
    cached_service_context,
    forget_service_context,
    load_service_context,
)
from booking.availability.resources import pick_resources
from booking.availability.service import alternatives_near, load_calendars, slot_json
from booking.availability.slots import fits_working_hours
from booking.bookings.checks import CustomerInput, as_utc, channel_for, check_notice
from booking.bookings.store import STALE_CONTEXT, insert_active
from booking.customers import customer_fields
from booking.errors import InvalidInput, SlotNotOffered, SlotTaken

_T = TypeVar("_T")
_R = TypeVar("_R")
TAKEN = "Someone else has just taken that time."


async def candidate_staff(
    conn: asyncpg.Connection,
    context: ServiceContext,
    staff_id: UUID | None,
    starts_at: datetime,
    ends_at: datetime,
) -> list[UUID]:
    """Staff who offer the service and work at that time, in trial order."""
    if staff_id is not None and staff_id not in context.eligible_staff:
        raise SlotNotOffered("That member of staff does not offer this service.", field="staff_id")
    wanted = (staff_id,) if staff_id is not None else context.eligible_staff
    if not wanted:
        raise SlotNotOffered("Nobody offers this service at the moment.", field="service_id")
    calendars = await load_calendars(
        conn, wanted, starts_at, ends_at, with_busy=False, weekly_hours=context.weekly
    )
    # Staff mostly share their hours (the context keeps one tuple per distinct set):
    # each distinct set is checked once, not once per member of staff.
    fits: dict[int, bool] = {}
    working = []
    for cal in calendars:
        verdict = fits.get(id(cal.weekly))
        if verdict is None:
            verdict = fits_working_hours(cal.weekly, context.tz, starts_at, ends_at)
            fits[id(cal.weekly)] = verdict
        if verdict:
            working.append(cal.staff_id)
    if not working:
        raise SlotNotOffered(
            "That time is outside working hours"
            + (
                " for that member of staff."
                if staff_id
                else " for everyone who offers the service."
            ),
            field="starts_at",
        )
    return working


async def slot_taken(
    context: ServiceContext,
    starts_at: datetime,
    principal: Principal,
    *,
    exclude_booking: UUID | None = None,
    detail: str = TAKEN,
) -> SlotTaken:
    """A SlotTaken carrying the nearest free alternatives, read after the rollback.

    The losers of a race all ask for the same alternatives at once (500 clients on one
    slot: 499 searches of the same calendars). One search per service, time and kind
    of caller runs at a time, and every loser asking while it runs gets its answer
    (alternatives are advice: the write that takes one checks again). A finished
    search is never reused, so an answer is never older than the request.
    """
    search = await _search(context, starts_at, principal, exclude_booking, None)
    return SlotTaken(detail, alternatives=list(await asyncio.shield(search)))


_Search = asyncio.Future[list[dict[str, Any]]]
_searches: dict[tuple[object, ...], _Search] = {}


async def _search(
    context: ServiceContext,
    starts_at: datetime,
    principal: Principal,
    exclude_booking: UUID | None,
    conn: asyncpg.Connection | None,
) -> _Search:
    """The shared alternatives search for this refusal: the one running, joined; or one
    started now - on ``conn`` when given, awaited here so that the caller still holds the
    connection while it runs (its outcome, an error too, is the future's)."""
    key = (
        context.business_id,
        context.service_id,
        starts_at,
        principal.is_staff,
        exclude_booking,
    )
    shared = _searches.get(key)
    if shared is not None and not shared.done():
        return shared
    shared = asyncio.ensure_future(
        _alternatives(context, starts_at, principal, exclude_booking, conn)
    )
    _searches[key] = shared
    shared.add_done_callback(lambda done: _forget(key, done))
    if conn is not None:
        await asyncio.wait([shared])
    return shared


def _forget(key: tuple[object, ...], done: _Search) -> None:
    if _searches.get(key) is done:
        del _searches[key]


async def _alternatives(
    context: ServiceContext,
    starts_at: datetime,
    principal: Principal,
    exclude_booking: UUID | None,
    conn: asyncpg.Connection | None,
) -> list[dict[str, Any]]:
    if conn is None:
        async with db.connection() as own:
            return await _alternatives(context, starts_at, principal, exclude_booking, own)
    if context.narrowed:  # alternatives may be with anyone who offers the service
        context = await load_service_context(conn, context.business_id, context.service_id)
    nearby = await alternatives_near(
        conn,
        context,
        starts_at,
        apply_notice=not principal.is_staff,
        exclude_booking=exclude_booking,
    )
    return [slot_json(slot, context.tz) for slot in nearby]


async def place_or_refuse(
    business_id: UUID,
    service_id: UUID,
    staff_id: UUID | None,
    starts_at: datetime,
    principal: Principal,
    attempt: Callable[[asyncpg.Connection, ServiceContext, bool], Awaitable[_R | None]],
) -> tuple[ServiceContext, _R]:
    """:func:`with_context` for a new booking or hold, whose ``attempt`` answers None when
    the database refused the time: then :class:`SlotTaken` with the alternatives. A
    search this refusal starts runs on the attempt's connection before it goes back to
    the pool: from a new one, a race's first loser waited behind every request queued
    for the pool, and all the losers answered at once when the race was over."""
    search: list[_Search] = []

    async def attempt_or_search(
        conn: asyncpg.Connection, context: ServiceContext, checked: bool
    ) -> _R | None:
        row = await attempt(conn, context, checked)
        if row is None:
            search.append(await _search(context, starts_at, principal, None, conn))
        return row

    context, row = await with_context(business_id, service_id, staff_id, attempt_or_search)
    if row is None:
        raise SlotTaken(TAKEN, alternatives=list(await asyncio.shield(search[-1])))
    return context, row


async def with_context(
    business_id: UUID,
    service_id: UUID,
    staff_id: UUID | None,
    attempt: Callable[[asyncpg.Connection, ServiceContext, bool], Awaitable[_T]],
) -> tuple[ServiceContext, _T]:
    """Run ``attempt(conn, context, checked)``: the checks and the one-statement write
    of a new booking or hold, on the service context.

    Outside a transaction the context may come from this process's memory
    (:func:`cached_service_context`): the write is then ``checked`` - it refuses to
    run if the business's rules moved since (SQLSTATE ``BK001``) - and a remembered
    context that made a check fail is not believed either. Either way the attempt
    runs once more on a context read now, unchecked, as a write did before the
    memory existed. One statement per booking instead of two: the context read cost
    PostgreSQL more than the insert (bench/RESULTS.md, 2026-11-27).
    """
    hours_for = (staff_id,) if staff_id else None
    if not db.in_transaction():
        async with db.connection() as conn:
            context, remembered = await cached_service_context(
                conn, business_id, service_id, hours_for=hours_for
            )
            try:
                return context, await db.retry_deadlocks(lambda: attempt(conn, context, True))
            except asyncpg.PostgresError as exc:
                if exc.sqlstate != STALE_CONTEXT:
                    raise
            except InvalidInput:
                if not remembered:
                    raise
        forget_service_context(business_id)
    async with db.connection() as conn:
        context = await load_service_context(conn, business_id, service_id, hours_for=hours_for)
        return context, await db.retry_deadlocks(lambda: attempt(conn, context, False))


async def create_booking(
    principal: Principal,
    business_id: UUID,
    service_id: UUID,
    starts_at: datetime,
    customer: CustomerInput,
    *,
    staff_id: UUID | None = None,
    channel: str | None = None,
    notes: str = "",
    resource_id: UUID | None = None,
) -> dict[str, Any]:
    principal.require("bookings:write", business_id)
    starts_at = as_utc(starts_at, "starts_at")
    chosen_channel = channel_for(principal, channel)

    # One function call (customer upsert, lazy hold release, insert, history, outbox:
    # see insert_active) once the context is known (see with_context).
    async def attempt(
        conn: asyncpg.Connection, context: ServiceContext, checked: bool
    ) -> asyncpg.Record | None:
        check_notice(context, principal, starts_at)
        ends_at = starts_at + context.shape.duration
        staff = await candidate_staff(conn, context, staff_id, starts_at, ends_at)
        resources = pick_resources(context.resource_group, context.resources, resource_id)
        fields = customer_fields(
            name=customer.name,
            phone=customer.phone,
            locale=customer.locale,
            business_locale=context.locale,
        )
        return await insert_active(
            conn,
            context,
            staff,
            starts_at,
            status="pending" if context.requires_confirmation else "confirmed",
            channel=chosen_channel,
            principal=principal,
            event="booking.created",
            customer=fields,
            notes=notes,
            checked=checked,
            resource_ids=resources,
        )

    _, row = await place_or_refuse(business_id, service_id, staff_id, starts_at, principal, attempt)
    return dict(row)
