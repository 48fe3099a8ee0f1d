"""Booking notifications to the Actions Center (the Maps Booking API's
``notification.partners.bookings.patch``), driven by the outbox like SMS.

:func:`on_booking_event` (in ``worker.OUTBOX_HANDLERS``) runs inside the relay's
transaction: it marks the business's listings' feeds as changed, and for a booking made
through the v3 protocol that someone other than the partner changed (desk move, staff
cancellation, a lost slot that was moved or cancelled) it returns one
``marketplace_notify`` job with a deterministic id. The job reads the booking as it is
now, sends one PATCH if the partner has not yet been told about this version, and records
the version in ``marketplace_notified`` (under a per-booking advisory lock, so two jobs
never send the same version twice). A failed call is retried with backoff (arq Retry).
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any
from uuid import UUID

import asyncpg
from arq import Retry

from booking import db, outbound
from booking.marketplace import inventory
from booking.marketplace.service import USER_TAG
from booking.outbox.dispatch import FollowUpJob, OutboxEvent, once_per_transaction
from booking.settings import Settings, get_settings

NOTIFY_JOB = "marketplace_notify"
MAX_TRIES = 8
NOTIFIED_TOPICS = frozenset({"booking.changed", "booking.cancelled", "booking.no_show"})


async def _feed_changed(conn: asyncpg.Connection, business_id: UUID) -> list[UUID]:
    rows = await conn.fetch(
        "UPDATE marketplace_listing SET feed_changed_at = now() WHERE business_id = $1 "
        "RETURNING partner_id",
        business_id,
    )
    return [row["partner_id"] for row in rows]


async def on_booking_event(conn: asyncpg.Connection, event: OutboxEvent) -> list[FollowUpJob]:
    if not event.topic.startswith("booking.") or event.business_id is None:
        return []
    business_id = event.business_id
    # now() is the transaction's time: once per relay pass and business sets the same.
    partners: list[UUID] = await once_per_transaction(
        ("marketplace_listing.feed_changed", business_id),
        lambda: _feed_changed(conn, business_id),
    )
    # Slots opened or closed, whoever booked (inventory.py); then the booking itself.
    jobs = inventory.availability_jobs(event, partners)
    if not partners or event.topic not in NOTIFIED_TOPICS or event.aggregate_id is None:
        return jobs
    booking = await conn.fetchrow(
        "SELECT b.partner_id FROM booking b JOIN marketplace_listing l "
        "ON l.business_id = b.business_id AND l.partner_id = b.partner_id "
        "WHERE b.business_id = $1 AND b.id = $2 AND b.notes LIKE $3",
        event.business_id,
        event.aggregate_id,
        USER_TAG + "%",
    )
    if booking is None:
        return jobs
    # The partner's own UpdateBooking is its answer already; tell it what others did.
    # (A partner changes only its own bookings, so a partner actor here is this one.)
    if str(event.payload.get("actor", "")).startswith("partner:"):
        return jobs
    return [
        *jobs,
        FollowUpJob(
            function=NOTIFY_JOB,
            job_id=f"marketplace-notify:{event.id}",
            args=(str(event.business_id), str(event.aggregate_id)),
        ),
    ]


def notification(row: asyncpg.Record | dict[str, Any], partner: str) -> tuple[str, dict[str, Any]]:
    """The update mask and the Booking body (REST JSON, camelCase)."""
    name = f"partners/{partner}/bookings/{row['id']}"
    body: dict[str, Any] = {
        "name": name,
        "merchantId": str(row["business_id"]),
        "serviceId": str(row["service_id"]),
    }
    if row["status"] in ("cancelled", "no_show"):
        body["status"] = "CANCELED" if row["status"] == "cancelled" else "NO_SHOW"
        return "status", body
    starts = row["starts_at"].astimezone(UTC)
    seconds = int((row["ends_at"] - row["starts_at"]).total_seconds())
    body["startTime"] = starts.strftime("%Y-%m-%dT%H:%M:%SZ")
    body["duration"] = f"{seconds}s"
    body["status"] = "CONFIRMED"
    return "startTime,duration", body


async def notify(settings: Settings, business_id: UUID, booking_id: UUID) -> str:
    async with db.transaction() as conn:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1::text))", str(booking_id))
        row = await conn.fetchrow(
            "SELECT b.id, b.business_id, b.service_id, b.status, b.starts_at, b.ends_at, "
            "b.version, b.partner_id, l.notification_base_url, n.version AS notified "
            "FROM booking b JOIN marketplace_listing l ON l.business_id = b.business_id "
            "AND l.partner_id = b.partner_id LEFT JOIN marketplace_notified n "
            "ON n.business_id = b.business_id AND n.booking_id = b.id "
            "WHERE b.business_id = $1 AND b.id = $2",
            business_id,
            booking_id,
        )
        if row is None:
            return "not listed"
        if row["notified"] is not None and row["notified"] >= row["version"]:
            return f"version {row['version']} already sent"
        mask, body = notification(row, str(row["partner_id"]))
        base = (row["notification_base_url"] or settings.marketplace_notify_url).rstrip("/")
        url = (
            f"{base}/v1alpha/notification/partners/{row['partner_id']}/bookings/"
            f"{row['id']}?updateMask={mask}"
        )
        outcome = await outbound.OutboundPolicy.from_settings(settings).post(
            url,
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
            method="PATCH",
        )
        if outcome.error_class is not None:
            raise NotificationFailed(outcome.error_class)
        await conn.execute(
            "INSERT INTO marketplace_notified (business_id, booking_id, version) "
            "VALUES ($1, $2, $3) ON CONFLICT (business_id, booking_id) DO UPDATE "
            "SET version = EXCLUDED.version, notified_at = now()",
            business_id,
            booking_id,
            row["version"],
        )
    return f"sent {mask} for version {row['version']}"


class NotificationFailed(Exception):
    pass


async def marketplace_notify(ctx: dict[str, Any], business_id: str, booking_id: str) -> str:
    """arq job: see :func:`notify`; a failed call is retried with backoff."""
    settings: Settings = ctx.get("settings") or get_settings()
    try:
        return await notify(settings, UUID(business_id), UUID(booking_id))
    except NotificationFailed as exc:
        tries = int(ctx.get("job_try", 1))
        if tries >= MAX_TRIES:
            raise
        raise Retry(defer=min(300, 2**tries)) from exc
