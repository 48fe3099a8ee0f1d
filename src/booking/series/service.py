"""Booking a recurring series, and cancelling this occurrence and the following.

Every occurrence is an ordinary booking written by ``bookings.store.insert_active``
(``booking_place``: the one constraint decides each), with its own reference code,
reminders and history; the rows carry the series' id. ``all_or_nothing`` writes every
occurrence or none (one transaction, rolled back on the first refusal's report);
``skip_conflicts`` writes those that fit. Either way the answer lists every
occurrence, and each conflict comes with the nearest free alternatives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import asyncpg

from booking import db
from booking.access.principal import Principal
from booking.availability.context import ServiceContext, load_service_context
from booking.availability.resources import pick_resources
from booking.availability.service import alternatives_near, slot_json
from booking.bookings.checks import (
    CustomerInput,
    actor,
    channel_for,
    check_access,
    check_notice,
    load_policy,
)
from booking.bookings.placing import candidate_staff
from booking.bookings.policy import BookingFacts, decide_cancel
from booking.bookings.status import ACTIVE
from booking.bookings.store import (
    BOOKING_COLUMNS,
    annotate_outbox,
    insert_active,
    record_event,
    set_status,
)
from booking.customers import customer_fields
from booking.errors import DomainError, InvalidInput, NotFound
from booking.series.rules import expand_dates, expand_rule


class SeriesConflict(DomainError):
    """all_or_nothing: an occurrence is taken, so nothing was written."""

    code = "series-conflict"
    status = 409
    title = "An occurrence of the series is not free; nothing was booked"


@dataclass
class Outcome:
    starts_at: datetime
    row: asyncpg.Record | None = None
    reason: str | None = None
    alternatives: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SeriesRequest:
    service_id: UUID
    customer: CustomerInput
    mode: str
    starts_at: datetime | None = None
    rule: str | None = None
    dates: tuple[datetime, ...] | None = None
    staff_id: UUID | None = None
    resource_id: UUID | None = None
    channel: str | None = None
    notes: str = ""


async def occurrence_times(
    conn: asyncpg.Connection, business_id: UUID, req: SeriesRequest, context: ServiceContext
) -> list[datetime]:
    if (req.rule is None) == (req.dates is None):
        raise InvalidInput("Give either rule (with starts_at) or dates.", field="rule")
    if req.rule is not None:
        if req.starts_at is None:
            raise InvalidInput("A rule needs starts_at (its first occurrence).", field="starts_at")
        if req.starts_at.tzinfo is None:
            raise InvalidInput("'starts_at' needs an offset.", field="starts_at")
        return expand_rule(req.rule, req.starts_at, context.tz)
    assert req.dates is not None
    return expand_dates(req.dates)


async def book_series(
    principal: Principal, business_id: UUID, req: SeriesRequest
) -> tuple[UUID, list[Outcome]]:
    principal.require("bookings:write", business_id)
    chosen_channel = channel_for(principal, req.channel)
    series_id = uuid4()
    try:
        async with db.transaction() as conn:
            context = await load_service_context(conn, business_id, req.service_id)
            times = await occurrence_times(conn, business_id, req, context)
            fields = customer_fields(
                name=req.customer.name,
                phone=req.customer.phone,
                locale=req.customer.locale,
                business_locale=context.locale,
            )
            resources = pick_resources(context.resource_group, context.resources, req.resource_id)
            if req.staff_id is not None and req.staff_id not in context.eligible_staff:
                raise InvalidInput(
                    "That member of staff does not offer this service.", field="staff_id"
                )
            await conn.execute(
                "INSERT INTO booking_series (business_id, id, service_id, rule, mode, "
                "occurrences, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                business_id,
                series_id,
                req.service_id,
                req.rule or ",".join(t.isoformat() for t in times),
                req.mode,
                len(times),
                principal.actor_label,
            )
            outcomes = [
                await _place_one(
                    conn,
                    context,
                    principal,
                    req,
                    starts_at,
                    fields,
                    resources,
                    chosen_channel,
                    series_id,
                )
                for starts_at in times
            ]
            placed = [o.row["id"] for o in outcomes if o.row is not None]
            if req.mode == "all_or_nothing" and len(placed) < len(outcomes):
                raise _Rollback(outcomes)
            if not placed:
                raise _Rollback(outcomes)
            await conn.execute(
                "UPDATE booking SET series_id = $2 WHERE business_id = $1 AND id = ANY($3::uuid[])",
                business_id,
                series_id,
                placed,
            )
            first = next(o.row for o in outcomes if o.row is not None)
            # One message announces the series (each occurrence keeps its own reminders).
            await annotate_outbox(
                conn, first, "booking.created", {"series_first": True, "occurrences": len(placed)}
            )
    except _Rollback as rollback:
        await _add_alternatives(context, principal, rollback.outcomes)
        raise SeriesConflict(
            "Some occurrences are not free"
            + ("; nothing was booked." if req.mode == "all_or_nothing" else "."),
            occurrences=[
                occurrence_json(o, context.tz, free_label=True) for o in rollback.outcomes
            ],
        ) from None
    await _add_alternatives(context, principal, outcomes)
    return series_id, outcomes


class _Rollback(Exception):
    def __init__(self, outcomes: list[Outcome]) -> None:
        super().__init__("series rolled back")
        self.outcomes = outcomes


async def _place_one(
    conn: asyncpg.Connection,
    context: ServiceContext,
    principal: Principal,
    req: SeriesRequest,
    starts_at: datetime,
    fields: tuple[str, str, str],
    resources: tuple[UUID, ...],
    channel: str,
    series_id: UUID,
) -> Outcome:
    outcome = Outcome(starts_at=starts_at)
    try:
        check_notice(context, principal, starts_at)
        staff = await candidate_staff(
            conn, context, req.staff_id, starts_at, starts_at + context.shape.duration
        )
    except DomainError as refused:
        outcome.reason = refused.detail
        return outcome
    outcome.row = await insert_active(
        conn,
        context,
        staff,
        starts_at,
        status="pending" if context.requires_confirmation else "confirmed",
        channel=channel,
        principal=principal,
        event="booking.created",
        customer=fields,
        notes=req.notes,
        resource_ids=resources,
        payload_extra={"series_id": str(series_id)},
    )
    if outcome.row is None:
        outcome.reason = "That time is taken."
    return outcome


async def _add_alternatives(
    context: ServiceContext, principal: Principal, outcomes: list[Outcome]
) -> None:
    refused = [o for o in outcomes if o.row is None]
    if not refused:
        return
    async with db.connection() as conn:
        for outcome in refused:
            nearby = await alternatives_near(
                conn, context, outcome.starts_at, limit=3, apply_notice=not principal.is_staff
            )
            outcome.alternatives = [slot_json(slot, context.tz) for slot in nearby]


def occurrence_json(outcome: Outcome, tz: ZoneInfo, *, free_label: bool = False) -> dict[str, Any]:
    local = outcome.starts_at.astimezone(tz).isoformat()
    if outcome.row is None:
        return {
            "starts_at": local,
            "outcome": "conflict",
            "reason": outcome.reason,
            "alternatives": outcome.alternatives,
        }
    if free_label:  # rolled back: it would have fitted
        return {"starts_at": local, "outcome": "free"}
    return {
        "starts_at": local,
        "outcome": "booked",
        "booking_id": str(outcome.row["id"]),
        "reference_code": outcome.row["reference_code"],
    }


async def cancel_following(
    principal: Principal, booking_id: UUID, reason: str | None
) -> tuple[UUID, list[UUID]]:
    """Cancel this occurrence and every later active one of its series, in one
    transaction; the change policy decides for each (all or none)."""
    cancelled: list[UUID] = []
    async with db.transaction() as conn:
        this = await conn.fetchrow(
            f"SELECT {BOOKING_COLUMNS}, b.series_id AS series FROM booking b WHERE b.id = $1",
            booking_id,
        )
        if this is None:
            raise NotFound("No such booking.")
        check_access(principal, this)
        if principal.kind != "customer":
            principal.require("bookings:cancel", this["business_id"])
        if this["series"] is None:
            raise InvalidInput("That booking is not part of a series.")
        rows = await conn.fetch(
            f"""
            SELECT {BOOKING_COLUMNS} FROM booking b
            WHERE b.business_id = $1 AND b.series_id = $2 AND b.starts_at >= $3
              AND b.status = ANY($4::text[])
            ORDER BY b.starts_at, b.id FOR UPDATE
            """,
            this["business_id"],
            this["series"],
            this["starts_at"],
            list(ACTIVE),
        )
        policy = await load_policy(conn, this["business_id"])
        now = datetime.now(UTC)
        for row in rows:
            decision = decide_cancel(
                policy,
                BookingFacts.from_row(row),
                actor=actor(principal),
                now=now,
                override_reason=reason,
            ).enforce()
            updated = await set_status(conn, row["id"], "cancelled", cancel_reason=reason)
            await record_event(
                conn,
                updated,
                "booking.cancelled",
                principal,
                principal.default_channel,
                from_status=row["status"],
                reason=decision.history_reason(reason),
                policy_override=decision.policy_override,
            )
            cancelled.append(row["id"])
    return this["series"], cancelled
