"""Calendar feeds out: a private, revocable iCalendar (RFC 5545) URL per member of staff,
per resource, or for the whole business, that Google, Outlook or Apple Calendar polls.

* One VEVENT per booking on that resource: ``UID`` is the booking id (stable across
  moves), ``SEQUENCE`` its version; a visit of several services gives one VEVENT per
  segment to the segment's own staff/room (``UID`` = booking id and position), and a
  class one VEVENT for the class (``UID`` = its id), not one per seat booking. The
  summary is only the customer's first name and the service (no phone, no notes: a
  feed URL ends up in places a booking does not).
* Cancelled bookings stay in the feed as ``STATUS:CANCELLED`` for
  :data:`CANCELLED_GRACE` after the cancellation, so a subscribed client drops them
  instead of keeping a ghost; holds (``held``/``expired``) never appear.
* The body depends only on the rows (``DTSTAMP`` is the booking's ``updated_at``), so its
  hash is a strong ``ETag`` and an unchanged poll with ``If-None-Match`` gets a 304.
* The URL is ``/feeds/<token>.ics``; the token is ``cf.<feed id>.<secret>``, only the
  secret's hash is stored, and revoking the feed makes the URL answer 404.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import icalendar

from booking import db
from booking.access.principal import Principal
from booking.errors import NotFound

CANCELLED_GRACE = timedelta(days=14)
HISTORY = timedelta(days=60)  # past bookings kept in the feed
PRODID = "-//booking//staff calendar//EN"
TOKEN_PREFIX = "cf"  # noqa: S105 - a marker, not a secret
EVENT_STATUS = {"cancelled": "CANCELLED", "pending": "TENTATIVE"}
FEED_COLUMNS = "f.id, f.business_id, f.resource_id, f.created_by, f.created_at, f.revoked_at"


@dataclass(frozen=True, slots=True)
class IssuedFeed:
    token: str
    row: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FeedBody:
    body: bytes
    etag: str


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def make_token(feed_id: UUID, secret: str) -> str:
    encoded = base64.urlsafe_b64encode(feed_id.bytes).rstrip(b"=").decode()
    return f"{TOKEN_PREFIX}.{encoded}.{secret}"


def parse_token(token: str) -> tuple[UUID, str] | None:
    prefix, _, rest = token.partition(".")
    encoded, _, secret = rest.partition(".")
    if prefix != TOKEN_PREFIX or not secret or len(encoded) != 22:
        return None
    try:
        return UUID(bytes=base64.urlsafe_b64decode(encoded + "==")), secret
    except ValueError:
        return None


async def _check_resource(conn: asyncpg.Connection, business_id: UUID, resource_id: UUID) -> None:
    found = await conn.fetchval(
        "SELECT 1 FROM resource WHERE business_id = $1 AND id = $2", business_id, resource_id
    )
    if found is None:
        raise NotFound("No such member of staff or resource at this business.")


async def create_feed(
    principal: Principal, business_id: UUID, resource_id: UUID | None
) -> IssuedFeed:
    """A new feed (managers): of one resource (a member of staff's id is their resource
    id) or, with ``resource_id`` None, of every booking of the business."""
    principal.require_manager(business_id)
    secret = secrets.token_urlsafe(24)
    async with db.transaction() as conn:
        if resource_id is not None:
            await _check_resource(conn, business_id, resource_id)
        row = await conn.fetchrow(
            f"""
            INSERT INTO calendar_feed AS f (business_id, resource_id, secret_hash, created_by)
            VALUES ($1, $2, $3, $4) RETURNING {FEED_COLUMNS}
            """,
            business_id,
            resource_id,
            _hash(secret),
            principal.actor_label,
        )
    assert row is not None
    return IssuedFeed(token=make_token(row["id"], secret), row=dict(row))


async def list_feeds(principal: Principal, business_id: UUID) -> list[dict[str, Any]]:
    principal.require_manager(business_id)
    async with db.connection() as conn:
        rows = await conn.fetch(
            f"SELECT {FEED_COLUMNS} FROM calendar_feed f WHERE f.business_id = $1 "
            "ORDER BY f.created_at, f.id",
            business_id,
        )
    return [dict(row) for row in rows]


async def revoke_feed(principal: Principal, business_id: UUID, feed_id: UUID) -> dict[str, Any]:
    principal.require_manager(business_id)
    async with db.connection() as conn:
        row = await conn.fetchrow(
            f"""
            UPDATE calendar_feed f SET revoked_at = coalesce(revoked_at, now())
            WHERE f.business_id = $1 AND f.id = $2 RETURNING {FEED_COLUMNS}
            """,
            business_id,
            feed_id,
        )
    if row is None:
        raise NotFound("No such calendar feed.")
    return dict(row)


# ---- the feed itself --------------------------------------------------------------

# One VEVENT per thing that holds the resource's time: a plain booking (UID = booking
# id), each segment of a visit on it (UID = booking id and position: a business-wide feed
# holds several segments of one visit), and each class it teaches or hosts (UID = the
# class's id; one event for the class, not one per seat booking).
_FEED_BOOKINGS = """
    SELECT b.id::text AS uid, b.version, b.status, b.starts_at, b.ends_at, b.updated_at,
           s.name AS service_name, split_part(btrim(c.name), ' ', 1) AS first_name,
           st.name AS staff_name, 'booking' AS kind
    FROM booking b
    JOIN service s ON s.business_id = b.business_id AND s.id = b.service_id
    JOIN staff st ON st.business_id = b.business_id AND st.id = b.staff_id
    LEFT JOIN customer c ON c.business_id = b.business_id AND c.id = b.customer_id
    WHERE b.business_id = $1 AND NOT b.is_sequence AND b.session_id IS NULL
      AND ($2::uuid IS NULL OR b.staff_id = $2 OR b.resource_id = $2)
      AND b.ends_at > $3
      AND (b.status IN ('pending', 'confirmed', 'checked_in', 'completed', 'no_show')
           OR (b.status = 'cancelled' AND b.updated_at > $4))
    UNION ALL
    SELECT b.id::text || '-' || g.position, b.version, b.status, g.starts_at, g.ends_at,
           b.updated_at, s.name, split_part(btrim(c.name), ' ', 1), st.name, 'segment'
    FROM booking b
    JOIN booking_segment g ON g.business_id = b.business_id AND g.booking_id = b.id
    JOIN service s ON s.business_id = g.business_id AND s.id = g.service_id
    JOIN staff st ON st.business_id = g.business_id AND st.id = g.staff_id
    LEFT JOIN customer c ON c.business_id = b.business_id AND c.id = b.customer_id
    WHERE b.business_id = $1 AND b.is_sequence
      AND ($2::uuid IS NULL OR g.staff_id = $2 OR g.resource_id = $2)
      AND g.ends_at > $3
      AND (b.status IN ('pending', 'confirmed', 'checked_in', 'completed', 'no_show')
           OR (b.status = 'cancelled' AND b.updated_at > $4))
    UNION ALL
    SELECT x.id::text, x.version, x.status, x.starts_at, x.ends_at, x.created_at,
           s.name, NULL, st.name, 'class'
    FROM session x
    JOIN service s ON s.business_id = x.business_id AND s.id = x.service_id
    JOIN staff st ON st.business_id = x.business_id AND st.id = x.staff_id
    WHERE x.business_id = $1
      AND ($2::uuid IS NULL OR x.staff_id = $2 OR x.resource_id = $2)
      AND x.ends_at > $3
    ORDER BY 4, 1
"""


def render(
    rows: Sequence[asyncpg.Record | dict[str, Any]], name: str, business_wide: bool
) -> bytes:
    """The iCalendar body for ``rows`` (pure: the same rows give the same bytes)."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    for row in rows:
        event = icalendar.Event()
        event.add("uid", f"{row['uid']}@booking")
        event.add("dtstamp", row["updated_at"].astimezone(UTC))
        event.add("last-modified", row["updated_at"].astimezone(UTC))
        event.add("sequence", row["version"])
        event.add("dtstart", row["starts_at"].astimezone(UTC))
        event.add("dtend", row["ends_at"].astimezone(UTC))
        if row["kind"] == "class":
            summary = f"{row['service_name']} (class)"
        else:
            summary = f"{row['first_name'] or 'Walk-in'} - {row['service_name']}"
        event.add("summary", f"{summary} ({row['staff_name']})" if business_wide else summary)
        status = row["status"]
        event.add("status", EVENT_STATUS.get(status, "CONFIRMED"))
        event.add("transp", "TRANSPARENT" if status == "cancelled" else "OPAQUE")
        cal.add_component(event)
    return bytes(cal.to_ical())


async def feed_for_token(token: str, *, now: datetime | None = None) -> FeedBody:
    """The feed a token opens; a wrong, unknown or revoked token is a 404."""
    parsed = parse_token(token)
    if parsed is None:
        raise NotFound("No such calendar feed.")
    feed_id, secret = parsed
    moment = now or datetime.now(UTC)
    async with db.connection() as conn:
        feed = await conn.fetchrow(
            "SELECT f.business_id, f.resource_id, f.secret_hash, f.revoked_at, "
            "coalesce(r.name, bz.name) AS name FROM calendar_feed f "
            "JOIN business bz ON bz.id = f.business_id "
            "LEFT JOIN resource r ON r.business_id = f.business_id AND r.id = f.resource_id "
            "WHERE f.id = $1",
            feed_id,
        )
        if (
            feed is None
            or feed["revoked_at"] is not None
            or not hmac.compare_digest(feed["secret_hash"], _hash(secret))
        ):
            raise NotFound("No such calendar feed.")
        rows = await conn.fetch(
            _FEED_BOOKINGS,
            feed["business_id"],
            feed["resource_id"],
            moment - HISTORY,
            moment - CANCELLED_GRACE,
        )
    body = render(rows, feed["name"], business_wide=feed["resource_id"] is None)
    return FeedBody(body=body, etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"')
