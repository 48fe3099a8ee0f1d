"""One time representation on the wire: RFC 3339 with the business's local offset.

The database keeps instants (``timestamptz``, read back in UTC), and so do the
outbox and the history's stored ``changes`` (RFC 3339 UTC, see :func:`stored_json`).
What leaves the service — a response, a partner webhook payload, a history entry —
is rendered here, once, in the zone of the business it belongs to:
``2026-12-02T10:00:00+01:00`` (``Z`` only for a business whose offset is zero).

* :func:`localize` walks a response (msgspec Structs, dicts, lists) and moves every
  ``datetime`` into the zone. Inside JSON blobs (a history entry's ``changes``, a
  webhook payload) a string that is a whole timestamp is rendered the same way;
  this also reads the older stored form ``"2026-12-01 21:00:00+00:00"``.
* :func:`business_zone` is the zone of a business, remembered for ``ZONE_TTL``
  seconds per process (a zone change shows everywhere within that time; the instants
  are right either way). :func:`common_zone` is the zone of objects that span
  businesses (an API key, a partner's webhook endpoint): theirs when they share
  one, else UTC.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec

from booking import db

UTC_ZONE = ZoneInfo("UTC")
ZONE_TTL = 60.0
_ZONES_MAX = 10_000
_T = TypeVar("_T")
# A whole string that is a timestamp with an offset (T or space between date and time).
_STAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})"
)
_zones: dict[UUID, tuple[ZoneInfo, float]] = {}


def zone(name: str | ZoneInfo) -> ZoneInfo:
    return name if isinstance(name, ZoneInfo) else ZoneInfo(name)


def rfc3339(moment: datetime, tz: str | ZoneInfo) -> str:
    """``moment`` (aware) as RFC 3339 in ``tz``: the one spelling of a time on the wire."""
    return moment.astimezone(zone(tz)).isoformat()


def parse_stamp(text: str) -> datetime | None:
    """A timestamp string as stored or sent (RFC 3339, or the older space form); None
    when the string is not a whole timestamp with an offset."""
    if not _STAMP.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def localize(value: _T, tz: str | ZoneInfo, *, keep: Iterable[str] = ()) -> _T:
    """``value`` with every aware datetime in ``tz`` (Structs are changed in place;
    fields named in ``keep`` are left exactly as they are)."""
    target = zone(tz)
    kept = frozenset(keep)
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            if name not in kept:
                setattr(value, name, _local(getattr(value, name), target, in_json=False))
        return value
    result: _T = _local(value, target, in_json=False)
    return result


def _local(value: Any, tz: ZoneInfo, *, in_json: bool) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(tz) if value.tzinfo is not None else value
    if isinstance(value, str):
        if not in_json:
            return value  # a Struct's own text (notes, reasons) is never rewritten
        moment = parse_stamp(value)
        return value if moment is None else moment.astimezone(tz).isoformat()
    if isinstance(value, msgspec.Struct):
        return localize(value, tz)
    if isinstance(value, dict):
        return {key: _local(item, tz, in_json=True) for key, item in value.items()}
    if isinstance(value, list):
        return [_local(item, tz, in_json=in_json) for item in value]
    if isinstance(value, tuple):
        return tuple(_local(item, tz, in_json=in_json) for item in value)
    return value


def _stored(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo is not None else value.isoformat()
    return str(value)


def stored_json(value: Any) -> str:
    """JSON for the database (history ``changes``, outbox payloads): times as RFC 3339
    UTC; :func:`localize` renders them in the business's zone on the way out."""
    return json.dumps(value, default=_stored)


# --------------------------------------------------------------------------- zones


async def business_zone(business_id: UUID) -> ZoneInfo:
    """The business's IANA zone (UTC for an unknown business)."""
    now = time.monotonic()
    known = _zones.get(business_id)
    if known is not None and now - known[1] < ZONE_TTL:
        return known[0]
    async with db.connection() as conn:
        name = await conn.fetchval("SELECT time_zone FROM business WHERE id = $1", business_id)
    found = ZoneInfo(name) if name else UTC_ZONE
    if len(_zones) >= _ZONES_MAX:
        _zones.clear()
    _zones[business_id] = (found, now)
    return found


async def common_zone(business_ids: Iterable[UUID]) -> ZoneInfo:
    """The zone the businesses share; UTC when they differ or there are none."""
    zones = {(await business_zone(business_id)).key for business_id in set(business_ids)}
    return ZoneInfo(zones.pop()) if len(zones) == 1 else UTC_ZONE


def forget_zone(business_id: UUID | None = None) -> None:
    """Drop a remembered zone (all of them without an id): call after a zone changes."""
    if business_id is None:
        _zones.clear()
    else:
        _zones.pop(business_id, None)
