"""A business's opt-in to the Actions Center: the listing row, and the feeds
(merchant, service, availability) in the feed spec's JSON, written to files."""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from booking import db, outbound
from booking.access.principal import Principal
from booking.availability.answer import availability
from booking.errors import Forbidden, InvalidInput, NotFound

FEEDS = ("merchant", "service", "availability")
SEARCH_DAYS = 60  # one availability search spans at most 62 days


async def enable(
    principal: Principal,
    business_id: UUID,
    partner_id: UUID,
    *,
    horizon_days: int = 30,
    notification_base_url: str | None = None,
) -> dict[str, Any]:
    """A manager lists the business with a partner (the marketplace's integration)."""
    principal.require_business(business_id)
    if not principal.is_manager:
        raise Forbidden("Only a manager can list the business on a marketplace.")
    if not 1 <= horizon_days <= 365:
        raise InvalidInput("feed_horizon_days must be between 1 and 365.", field="horizon")
    if notification_base_url is not None:
        try:
            await outbound.OutboundPolicy.from_settings().check(notification_base_url)
        except outbound.Refused as exc:
            raise InvalidInput(str(exc), field="notification_base_url") from None
    async with db.transaction() as conn:
        if not await conn.fetchval("SELECT 1 FROM partner WHERE id = $1", partner_id):
            raise NotFound("No such partner.")
        row = await conn.fetchrow(
            """
            INSERT INTO marketplace_listing (business_id, partner_id, feed_horizon_days,
                notification_base_url)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (business_id, partner_id) DO UPDATE SET
                feed_horizon_days = EXCLUDED.feed_horizon_days,
                notification_base_url = EXCLUDED.notification_base_url, feed_changed_at = now()
            RETURNING business_id, partner_id, feed_horizon_days, notification_base_url
            """,
            business_id,
            partner_id,
            horizon_days,
            notification_base_url,
        )
    return dict(row)


async def disable(principal: Principal, business_id: UUID, partner_id: UUID) -> None:
    principal.require_business(business_id)
    if not principal.is_manager:
        raise Forbidden("Only a manager can change marketplace listings.")
    async with db.connection() as conn:
        await conn.execute(
            "DELETE FROM marketplace_listing WHERE business_id = $1 AND partner_id = $2",
            business_id,
            partner_id,
        )


async def is_listed(conn: asyncpg.Connection, business_id: UUID, partner_id: UUID | None) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM marketplace_listing WHERE business_id = $1 AND partner_id = $2",
            business_id,
            partner_id,
        )
    )


def _metadata(nonce: int) -> dict[str, Any]:
    # FeedMetadata (feed spec): one complete shard per file.
    return {
        "processing_instruction": "PROCESS_AS_COMPLETE",
        "shard_number": 0,
        "total_shards": 1,
        "nonce": str(nonce),
        "generation_timestamp": int(time.time()),
    }


async def _listed(partner_id: UUID) -> list[asyncpg.Record]:
    async with db.connection() as conn:
        return list(
            await conn.fetch(
                "SELECT l.business_id, l.feed_horizon_days, b.name, b.address, b.on_duty_phone, "
                "b.time_zone FROM marketplace_listing l JOIN business b ON b.id = l.business_id "
                "WHERE l.partner_id = $1 ORDER BY b.id",
                partner_id,
            )
        )


async def _services(business_ids: list[UUID]) -> list[asyncpg.Record]:
    async with db.connection() as conn:
        return list(
            await conn.fetch(
                "SELECT business_id, id, name, duration_minutes FROM service "
                "WHERE business_id = ANY($1::uuid[]) AND active ORDER BY business_id, id",
                business_ids,
            )
        )


async def merchant_feed(partner_id: UUID) -> dict[str, Any]:
    merchants = []
    for row in await _listed(partner_id):
        merchant: dict[str, Any] = {"merchant_id": str(row["business_id"]), "name": row["name"]}
        if row["on_duty_phone"]:
            merchant["telephone"] = row["on_duty_phone"]
        if row["address"]:
            merchant["geo"] = {"unstructured_address": row["address"]}
        merchants.append(merchant)
    return {"metadata": _metadata(time.time_ns()), "merchant": merchants}


async def service_feed(partner_id: UUID) -> dict[str, Any]:
    listed = [row["business_id"] for row in await _listed(partner_id)]
    return {
        "metadata": _metadata(time.time_ns()),
        "service": [
            {
                "merchant_id": str(row["business_id"]),
                "service_id": str(row["id"]),
                "name": row["name"],
            }
            for row in await _services(listed)
        ],
    }


async def service_availability(
    business_id: UUID, service_id: UUID, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """One Availability per free (start, staff member) of the service in [start, end)."""
    slots: list[dict[str, Any]] = []
    cursor = start
    while cursor < end:
        until = min(end, cursor + timedelta(days=SEARCH_DAYS))
        _, times = await availability(business_id, service_id, cursor, until)
        for begin, finish, staff, _rooms in times:
            for member in staff:
                slots.append(
                    {
                        "merchant_id": str(business_id),
                        "service_id": str(service_id),
                        "start_sec": int(begin.timestamp()),
                        "duration_sec": int((finish - begin).total_seconds()),
                        "spots_total": 1,
                        "spots_open": 1,
                        "resources": {"staff_id": str(member)},
                        "confirmation_mode": "CONFIRMATION_MODE_SYNCHRONOUS",
                    }
                )
        cursor = until
    return slots


async def _business_groups(
    business_id: UUID, horizon_days: int, moment: datetime
) -> list[dict[str, Any]]:
    """One ServiceAvailability group per active service of one business."""
    end = moment + timedelta(days=horizon_days)
    return [
        {"availability": await service_availability(business_id, service["id"], moment, end)}
        for service in await _services([business_id])
    ]


# A business's part of the availability feed is searched again when the business changed
# (its listing's feed_changed_at, set by the outbox handlers on every booking event and
# schedule change) or when it is older than this: the horizon moves with the clock, and
# past slots drop out.
FRAGMENT_MAX_AGE = timedelta(hours=1)


def _fragment_path(feed_dir: str, partner_id: UUID, business_id: UUID) -> Path:
    return feed_path(feed_dir, partner_id, "availability").parent / "parts" / f"{business_id}.json"


async def _availability_incremental(
    feed_dir: str, partner_id: UUID, now: datetime | None = None
) -> tuple[dict[str, Any], list[UUID]]:
    """The availability feed from per-business parts, only the stale ones searched again;
    (the feed, the businesses searched)."""
    moment = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    async with db.connection() as conn:
        listed = await conn.fetch(
            # The database's clock, read before any search: a change the relay records
            # later is newer than the parts searched now (the booking it follows is
            # committed before the relay runs, so the search sees it).
            "SELECT business_id, feed_horizon_days, feed_changed_at, clock_timestamp() AS read_at "
            "FROM marketplace_listing WHERE partner_id = $1 ORDER BY business_id",
            partner_id,
        )
    groups: list[dict[str, Any]] = []
    searched: list[UUID] = []
    for row in listed:
        path = _fragment_path(feed_dir, partner_id, row["business_id"])
        part = _read_part(path)
        fresh = (
            part is not None
            and part["horizon_days"] == row["feed_horizon_days"]
            and moment - datetime.fromisoformat(part["moment"]) < FRAGMENT_MAX_AGE
            and (
                row["feed_changed_at"] is None
                or datetime.fromisoformat(part["searched_at"]) > row["feed_changed_at"]
            )
        )
        if not fresh:
            part = {
                "moment": moment.isoformat(),
                "searched_at": row["read_at"].isoformat(),
                "horizon_days": row["feed_horizon_days"],
                "groups": await _business_groups(
                    row["business_id"], int(row["feed_horizon_days"]), moment
                ),
            }
            _write_atomically(path, json.dumps(part).encode())
            searched.append(row["business_id"])
        assert part is not None
        groups += part["groups"]
    return {"metadata": _metadata(time.time_ns()), "service_availability": groups}, searched


def _read_part(path: Path) -> dict[str, Any] | None:
    try:
        part: dict[str, Any] = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None  # missing or torn: searched again
    return part


def _write_atomically(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_bytes(body)
    os.replace(temporary, path)


BUILDERS = {"merchant": merchant_feed, "service": service_feed}  # availability: incremental


def feed_path(feed_dir: str, partner_id: UUID, kind: str) -> Path:
    base = Path(feed_dir) if feed_dir else Path(tempfile.gettempdir()) / "booking-marketplace-feeds"
    return base / str(partner_id) / f"{kind}.json"


async def write_feeds(feed_dir: str, partner_id: UUID) -> dict[str, Path]:
    """Regenerate the partner's three feeds (whole files, replaced atomically); the
    availability feed is put together from per-business parts, and only the parts of
    businesses that changed since (or that are older than FRAGMENT_MAX_AGE) are searched."""
    written = {}
    for kind in FEEDS:
        path = feed_path(feed_dir, partner_id, kind)
        if kind == "availability":
            feed, _ = await _availability_incremental(feed_dir, partner_id)
        else:
            feed = await BUILDERS[kind](partner_id)
        _write_atomically(path, json.dumps(feed).encode())
        written[kind] = path
    return written


async def stale(feed_dir: str, partner_id: UUID) -> bool:
    """A feed file is older than the last change a listing of the partner saw."""
    async with db.connection() as conn:
        changed = await conn.fetchval(
            "SELECT max(feed_changed_at) FROM marketplace_listing WHERE partner_id = $1",
            partner_id,
        )
    for kind in FEEDS:
        path = feed_path(feed_dir, partner_id, kind)
        if not path.exists():
            return True
        if changed is not None and path.stat().st_mtime <= changed.timestamp():
            return True
        if time.time() - path.stat().st_mtime > FRAGMENT_MAX_AGE.total_seconds():
            return True  # the horizon has moved on
    return False


async def read_feed(feed_dir: str, partner_id: UUID, kind: str) -> bytes:
    if kind not in FEEDS:
        raise NotFound("No such feed.")
    if await stale(feed_dir, partner_id):
        await write_feeds(feed_dir, partner_id)
    return feed_path(feed_dir, partner_id, kind).read_bytes()
