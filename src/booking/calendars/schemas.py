"""Wire shapes of the calendars API."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from msgspec import Struct


class FeedCreate(Struct, forbid_unknown_fields=True):
    """``resource_id``: a member of staff (their id) or a room/chair/device; omit it for
    the business-wide feed (every booking, with the staff member's name)."""

    resource_id: UUID | None = None


class FeedOut(Struct):
    id: UUID
    business_id: UUID
    resource_id: UUID | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class FeedIssued(Struct):
    """The feed and its private URL (shown once; only a hash of its secret is kept)."""

    feed: FeedOut
    url: str
    webcal_url: str
