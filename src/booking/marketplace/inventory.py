"""Availability real-time updates: the Maps Booking API's batch availability replace
(``inventory.partners.availability.replace``), sent when slots open or close.

The spec asks for an update whenever a booking - ours or the marketplace's - takes a
slot, frees one (a cancellation, a move) or a schedule changes. Each booking event of a
listed business (the outbox handler in marketplace/notify.py) yields one job per listing
partner for the window around the time(s) the event names: the start it had and the
start it has, one day either side, which covers every slot a booking there can touch
(a service and its buffers are shorter than a day). The job reads the availability *at
the time it runs* (the same search as the availability feed and BatchAvailabilityLookup),
so reruns and late jobs send the current truth, never an old one; jobs of one business
and partner take an advisory lock around read and send, so two updates of overlapping
windows reach the marketplace in the order they were read.

The window is sent as ``startTimeRestrict`` / ``endTimeRestrict``: the marketplace
replaces every slot it holds that starts inside it with the ones we send, for each
active service of the business (an empty list closes them all). Not sent: changes of
working hours, time off and staff (the daily feed carries them; no outbox event names
them yet).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from arq import Retry

from booking import db, outbound
from booking.marketplace.listing import service_availability
from booking.outbox.dispatch import FollowUpJob, OutboxEvent
from booking.settings import Settings, get_settings

AVAILABILITY_JOB = "marketplace_availability"
MAX_TRIES = 8
MARGIN = timedelta(days=1)  # either side of a start time an event names
# Events whose booking takes or frees slots (a check-in or a completion changes none).
SLOT_TOPICS = frozenset({"booking.created", "booking.changed", "booking.cancelled"})


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def affected_window(event: OutboxEvent) -> tuple[datetime, datetime] | None:
    """The span whose slots the event may have opened or closed (None: it names no time)."""
    payload = event.payload
    moments = [_instant(payload.get("starts_at"))]
    moved = (payload.get("changes") or {}).get("starts_at")
    if isinstance(moved, dict):
        moments += [_instant(moved.get("from")), _instant(moved.get("to"))]
    known = [m for m in moments if m is not None]
    if not known:
        return None
    return min(known) - MARGIN, max(known) + MARGIN


def availability_jobs(event: OutboxEvent, partner_ids: Iterable[UUID]) -> list[FollowUpJob]:
    """One replace per partner the business is listed with, for the event's window."""
    if event.topic not in SLOT_TOPICS or event.business_id is None:
        return []
    window = affected_window(event)
    if window is None:
        return []
    start, end = window
    return [
        FollowUpJob(
            function=AVAILABILITY_JOB,
            job_id=f"marketplace-availability:{event.id}:{partner}",
            args=(str(event.business_id), str(partner), start.isoformat(), end.isoformat()),
        )
        for partner in partner_ids
    ]


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _slot(feed_slot: dict[str, Any]) -> dict[str, Any]:
    """A feed Availability (snake_case, seconds) as the REST API's JSON (camelCase,
    RFC 3339 timestamps, durations as "<n>s", int64 as strings)."""
    begins = datetime.fromtimestamp(feed_slot["start_sec"], UTC)
    slot: dict[str, Any] = {
        "startTime": _rfc3339(begins),
        "duration": f"{feed_slot['duration_sec']}s",
        "spotsTotal": str(feed_slot["spots_total"]),
        "spotsOpen": str(feed_slot["spots_open"]),
    }
    staff = feed_slot.get("resources", {}).get("staff_id")
    if staff:
        slot["resources"] = {"staffId": staff}
    return slot


async def replace_body(
    conn: asyncpg.Connection, business_id: UUID, start: datetime, end: datetime
) -> tuple[dict[str, Any], int]:
    """The request body for every active service of the business, and its slot count."""
    services = await conn.fetch(
        "SELECT id FROM service WHERE business_id = $1 AND active ORDER BY id", business_id
    )
    groups = []
    count = 0
    for service in services:
        slots = [
            _slot(s) for s in await service_availability(business_id, service["id"], start, end)
        ]
        count += len(slots)
        groups.append(
            {
                "merchantId": str(business_id),
                "serviceId": str(service["id"]),
                "startTimeRestrict": _rfc3339(start),
                "endTimeRestrict": _rfc3339(end),
                "availability": slots,
            }
        )
    return {"extendedServiceAvailability": groups}, count


class ReplaceFailed(Exception):
    pass


async def replace(
    settings: Settings,
    business_id: UUID,
    partner_id: UUID,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
) -> str:
    """Send the current availability of [start, end) (from now on) to the partner."""
    start = max(start, (now or datetime.now(UTC)).replace(second=0, microsecond=0))
    if start >= end:
        return "window in the past"
    async with db.transaction() as conn:
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            f"marketplace-availability:{business_id}:{partner_id}",
        )
        listing = await conn.fetchrow(
            "SELECT notification_base_url FROM marketplace_listing "
            "WHERE business_id = $1 AND partner_id = $2",
            business_id,
            partner_id,
        )
        if listing is None:
            return "not listed"
        body, count = await replace_body(conn, business_id, start, end)
        base = (listing["notification_base_url"] or settings.marketplace_notify_url).rstrip("/")
        url = f"{base}/v1alpha/inventory/partners/{partner_id}/availability:replace"
        outcome = await outbound.OutboundPolicy.from_settings(settings).post(
            url, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        if outcome.error_class is not None:
            raise ReplaceFailed(outcome.error_class)
    return f"replaced {count} slots of {len(body['extendedServiceAvailability'])} services"


async def marketplace_availability(
    ctx: dict[str, Any], business_id: str, partner_id: str, start: str, end: str
) -> str:
    """arq job: see :func:`replace`; a failed call is retried with backoff."""
    settings: Settings = ctx.get("settings") or get_settings()
    try:
        return await replace(
            settings,
            UUID(business_id),
            UUID(partner_id),
            datetime.fromisoformat(start),
            datetime.fromisoformat(end),
        )
    except ReplaceFailed as exc:
        tries = int(ctx.get("job_try", 1))
        if tries >= MAX_TRIES:
            raise
        raise Retry(defer=min(300, 2**tries)) from exc
