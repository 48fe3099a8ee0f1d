"""Availability real-time updates: the Maps Booking API's batch availability replace
(``inventory.partners.availability.replace``), sent when slots open or close.

The spec asks for an update whenever a booking - ours or the marketplace's - takes a
slot, frees one (a cancellation, a move) or a schedule changes. Each such event of a
listed business yields one job per listing partner for the window it names:

* a booking event (the outbox handler in marketplace/notify.py): the start it had and
  the start it has, one day either side, which covers every slot a booking there can
  touch (a service and its buffers are shorter than a day);
* a ``schedule.changed`` event (:func:`on_schedule_changed`; written by the change in
  its transaction, booking.schedule_changes): working hours, a dated exception, time off,
  busy time from a staff member's calendar, staff deactivated or reactivated, a resource
  or a service's staff, length or needs changed, the time zone. Its span, one day either
  side, cut at the listing's feed horizon (``feed_horizon_days`` from the event): a
  change of the week's shape is the whole horizon, time off its own span, an exception
  its day. A span wholly beyond the horizon sends nothing (the feed does not carry it).

The job reads the availability *at the time it runs* (the same search as the availability
feed and BatchAvailabilityLookup), so reruns and late jobs send the current truth, never
an old one; jobs of one business and partner take an advisory lock around read and send,
so two updates of overlapping windows reach the marketplace in the order they were read.

The window is sent as ``startTimeRestrict`` / ``endTimeRestrict``: the marketplace
replaces every slot it holds that starts inside it with the ones we send, for each
active service of the business (an empty list closes them all); a window longer than
:data:`CALL_SPAN` goes as consecutive calls of at most that span, under the same lock (a
failed one retries the whole job, which sends the current truth again).

A service deactivated closes all its slots: the event's job names it, and each call
carries it with an empty list (unless it is active again by the time the job runs, when it
goes with its slots, the current truth); a service reactivated is active, so its slots go
like every other's. Not sent: a service created, a staff member added (no hours, no
services yet): the service feed must name a service before its slots mean anything, so
those wait for the feeds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from arq import Retry

from booking import db, outbound
from booking.marketplace.listing import service_availability
from booking.outbox.dispatch import FollowUpJob, OutboxEvent
from booking.schedule_changes import SCHEDULE_CHANGED
from booking.settings import Settings, get_settings

AVAILABILITY_JOB = "marketplace_availability"
MAX_TRIES = 8
MARGIN = timedelta(days=1)  # either side of a start time an event names
# The longest window one replace call carries: a schedule change's horizon (up to a year)
# goes as several calls, each body a week of slots at most (20 staff in 15-minute steps:
# about 1 MB per service).
CALL_SPAN = timedelta(days=7)
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


def _job(
    event: OutboxEvent, partner: UUID, start: datetime, end: datetime, closed: Sequence[str] = ()
) -> FollowUpJob:
    args: tuple[Any, ...] = (
        str(event.business_id),
        str(partner),
        start.isoformat(),
        end.isoformat(),
    )
    return FollowUpJob(
        function=AVAILABILITY_JOB,
        job_id=f"marketplace-availability:{event.id}:{partner}",
        args=(*args, list(closed)) if closed else args,
    )


def availability_jobs(event: OutboxEvent, partner_ids: Iterable[UUID]) -> list[FollowUpJob]:
    """One replace per partner the business is listed with, for the event's window."""
    if event.topic not in SLOT_TOPICS or event.business_id is None:
        return []
    window = affected_window(event)
    if window is None:
        return []
    start, end = window
    return [_job(event, partner, start, end) for partner in partner_ids]


def schedule_window(event: OutboxEvent, horizon_days: int) -> tuple[datetime, datetime] | None:
    """The span of a ``schedule.changed`` event whose slots may differ, a day either side,
    inside one listing's horizon (None: nothing of it is in the feed)."""
    begins, ends = _instant(event.payload.get("from")), _instant(event.payload.get("to"))
    if begins is None or ends is None:
        return None
    start = max(begins - MARGIN, event.created_at)
    end = min(ends + MARGIN, event.created_at + timedelta(days=horizon_days))
    return (start, end) if start < end else None


async def on_schedule_changed(conn: asyncpg.Connection, event: OutboxEvent) -> list[FollowUpJob]:
    """The outbox handler (``booking.worker.OUTBOX_HANDLERS``) of ``schedule.changed``: the
    business's listings' feeds are marked changed, and each listing whose horizon the
    change reaches gets one replace (a business listed nowhere: nothing)."""
    if event.topic != SCHEDULE_CHANGED or event.business_id is None:
        return []
    listings = await conn.fetch(
        "UPDATE marketplace_listing SET feed_changed_at = now() WHERE business_id = $1 "
        "RETURNING partner_id, feed_horizon_days",
        event.business_id,
    )
    closed = (
        [str(event.aggregate_id)]
        if event.payload.get("cause") == "service_deactivated" and event.aggregate_id
        else []
    )
    jobs = []
    for listing in sorted(listings, key=lambda row: row["partner_id"]):
        window = schedule_window(event, int(listing["feed_horizon_days"]))
        if window is not None:
            jobs.append(_job(event, listing["partner_id"], *window, closed))
    return jobs


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
    conn: asyncpg.Connection,
    business_id: UUID,
    start: datetime,
    end: datetime,
    closed: Sequence[UUID] = (),
) -> tuple[dict[str, Any], int]:
    """The request body for every active service of the business, and each of ``closed``
    (services deactivated) still inactive with an empty list; and its slot count."""
    services = await conn.fetch(
        "SELECT id, active FROM service WHERE business_id = $1 "
        "AND (active OR id = ANY($2::uuid[])) ORDER BY id",
        business_id,
        list(closed),
    )
    groups = []
    count = 0
    for service in services:
        slots = (
            [_slot(s) for s in await service_availability(business_id, service["id"], start, end)]
            if service["active"]
            else []
        )
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
    closed: Sequence[UUID] = (),
) -> str:
    """Send the current availability of [start, end) (from now on) to the partner; each
    service of ``closed`` that is still inactive goes with no slots."""
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
        base = (listing["notification_base_url"] or settings.marketplace_notify_url).rstrip("/")
        url = f"{base}/v1alpha/inventory/partners/{partner_id}/availability:replace"
        policy = outbound.OutboundPolicy.from_settings(settings)
        count = calls = services = 0
        cursor = start
        while cursor < end:  # a long window (a schedule change) in calls of a week
            until = min(end, cursor + CALL_SPAN)
            body, slots = await replace_body(conn, business_id, cursor, until, closed)
            outcome = await policy.post(
                url, json.dumps(body).encode(), {"Content-Type": "application/json"}
            )
            if outcome.error_class is not None:
                raise ReplaceFailed(outcome.error_class)
            count, calls = count + slots, calls + 1
            services = len(body["extendedServiceAvailability"])
            cursor = until
    return f"replaced {count} slots of {services} services" + (
        f" in {calls} calls" if calls > 1 else ""
    )


async def marketplace_availability(
    ctx: dict[str, Any],
    business_id: str,
    partner_id: str,
    start: str,
    end: str,
    closed: Sequence[str] = (),
) -> str:
    """arq job: see :func:`replace`; a failed call is retried with backoff. ``closed``:
    the services deactivated (jobs enqueued before it existed have none)."""
    settings: Settings = ctx.get("settings") or get_settings()
    try:
        return await replace(
            settings,
            UUID(business_id),
            UUID(partner_id),
            datetime.fromisoformat(start),
            datetime.fromisoformat(end),
            closed=[UUID(service) for service in closed],
        )
    except ReplaceFailed as exc:
        tries = int(ctx.get("job_try", 1))
        if tries >= MAX_TRIES:
            raise
        raise Retry(defer=min(300, 2**tries)) from exc
