"""Wire shapes of the calendars API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta, Struct


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


class ConnectionCreate(Struct, forbid_unknown_fields=True):
    """An outside calendar of the member of staff: ``ics`` (a subscription URL, also
    ``webcal://``) or ``caldav`` (a calendar collection URL, with user name and password).
    ``email``: their address in that calendar, so events they declined are not busy.
    ``write_back`` (CalDAV only): their bookings are also written into that calendar."""

    kind: Literal["ics", "caldav"]
    url: Annotated[str, Meta(min_length=1, max_length=2000)]
    username: Annotated[str, Meta(max_length=200)] = ""
    password: Annotated[str, Meta(max_length=500)] = ""
    email: Annotated[str, Meta(max_length=320)] | None = None
    write_back: bool = False


class ConnectionOut(Struct):
    """A connection and its status (never its password)."""

    id: UUID
    business_id: UUID
    staff_id: UUID
    kind: str
    url: str
    username: str
    email: str | None
    write_back: bool
    busy_blocks: int
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    next_sync_at: datetime
    created_at: datetime


class SyncReportOut(Struct):
    """What one sync did: blocks added/removed/kept, and the bookings an outside event
    now overlaps (each marked at risk with an offer of held alternatives)."""

    status: str
    added: int
    removed: int
    kept: int
    conflicts: list[UUID]
    offer_ids: list[UUID]
    error: str | None


class ConnectionSynced(Struct):
    connection: ConnectionOut
    sync: SyncReportOut
