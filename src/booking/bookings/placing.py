"""Placing a new booking or hold: who may take the time, on which service context, and
what the caller hears when the database says the time is taken.

The exclusion constraint ``allocation_no_overlap`` has the last word on whether a
time is free; its refusal becomes :class:`SlotTaken` with the nearest alternatives.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
from booking.errors import InvalidInput, SlotTaken

_T = TypeVar("_T")


async def candidate_staff(
    conn: asyncpg.Connection,
    context: ServiceContext,
    staff_id: UUID | None,
    starts_at: datetime,
    ends_at: datetime,
) -> list[UUID]:
    """Staff who offer the service and work at that time, in trial order."""
    if staff_id is not None and staff_id not in context.eligible_staff:
        raise InvalidInput("That member of staff does not offer this service.", field="staff_id")
    wanted = (staff_id,) if staff_id is not None else context.eligible_staff
    if not wanted:
        raise InvalidInput("Nobody offers this service at the moment.", field="service_id")
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
        raise InvalidInput(
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
    detail: str = "Someone else has just taken that time.",
    conn: asyncpg.Connection | None = None,
    asked_at: float | None = None,
) -> SlotTaken:
    """A SlotTaken carrying the nearest free alternatives, read after the refusal.

    The losers of a race all ask for the same alternatives at once (500 clients on one
    slot: 499 searches of the same calendars). One search per service, time and kind
    of caller runs at a time, and every loser asking while it runs gets its answer
    (alternatives are advice: the write that takes one checks again). A finished
    search still answers a request that had begun before the search started
    (``asked_at``, ``time.monotonic()``) - its answer was read after the request
    arrived - and nobody else, so a race's losers are answered by one or two searches
    instead of one after another for as long as losers keep arriving.

    ``conn``: the connection the caller's refused write ran on, still held. A search
    this caller starts runs on it: from the pool it would queue behind every other
    request of the race (a 500-client race's search waited there until nearly every
    loser had had its turn, and all of them waited for the search).
    """
    key = (
        context.business_id,
        context.service_id,
        starts_at,
        principal.is_staff,
        exclude_booking,
    )
    while (shared := _searches.get(key)) is not None and (
        not shared.answer.done() or (asked_at is not None and asked_at <= shared.began)
    ):
        try:
            return SlotTaken(detail, alternatives=list(await asyncio.shield(shared.answer)))
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not shared.answer.cancelled() or (current is not None and current.cancelling()):
                raise
            # the request running that search went away before it ended: search again
    loop = asyncio.get_running_loop()
    shared = _Search(time.monotonic(), loop.create_future())
    _searches[key] = shared
    try:
        alternatives = await _alternatives(context, starts_at, principal, exclude_booking, conn)
    except BaseException as exc:
        _forget(key, shared)
        if isinstance(exc, asyncio.CancelledError):
            shared.answer.cancel()
        else:
            shared.answer.set_exception(exc)
            shared.answer.exception()  # retrieved: the waiters raise it, so does this caller
        raise
    shared.answer.set_result(alternatives)
    loop.call_later(_KEEP_ANSWER_S, _forget, key, shared)
    return SlotTaken(detail, alternatives=list(alternatives))


@dataclass(frozen=True, slots=True)
class _Search:
    began: float  # time.monotonic() when it started
    answer: asyncio.Future[list[dict[str, Any]]]


_searches: dict[tuple[object, ...], _Search] = {}
# How long a finished answer is kept for requests that began before its search did
# (a memory bound: such a request arriving later just searches again).
_KEEP_ANSWER_S = 5.0


def _forget(key: tuple[object, ...], search: _Search) -> None:
    if _searches.get(key) is search:
        del _searches[key]


async def _alternatives(
    context: ServiceContext,
    starts_at: datetime,
    principal: Principal,
    exclude_booking: UUID | None,
    conn: asyncpg.Connection | None,
) -> list[dict[str, Any]]:
    if conn is None:
        async with db.connection() as conn:
            return await _alternatives(context, starts_at, principal, exclude_booking, conn)
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
    asked_at = time.monotonic()
    principal.require("bookings:write", business_id)
    starts_at = as_utc(starts_at, "starts_at")
    chosen_channel = channel_for(principal, channel)

    # One function call (customer upsert, lazy hold release, insert, history, outbox:
    # see insert_active) once the context is known (see with_context).
    async def attempt(
        conn: asyncpg.Connection, context: ServiceContext, checked: bool
    ) -> asyncpg.Record:
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
        row = await insert_active(
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
        if row is None:  # alternatives read on this connection, before it goes back
            raise await slot_taken(context, starts_at, principal, conn=conn, asked_at=asked_at)
        return row

    _, row = await with_context(business_id, service_id, staff_id, attempt)
    return dict(row)
