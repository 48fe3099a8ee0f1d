"""HTTP for a member of staff's outside calendars (busy times in, optional write-back)."""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from booking.access.guards import requires
from booking.access.principal import Principal
from booking.calendars import connections
from booking.calendars.schemas import (
    ConnectionCreate,
    ConnectionOut,
    ConnectionSynced,
    SyncReportOut,
)
from booking.calendars.sync import SyncReport
from booking.wire_time import business_zone, localize

STAFF_ONLY = requires(kinds=("admin", "staff"))  # the service checks the manager role
_OUT_FIELDS = ConnectionOut.__struct_fields__


def _out(row: dict[str, Any]) -> ConnectionOut:
    return ConnectionOut(**{name: row[name] for name in _OUT_FIELDS})


def _report(report: SyncReport) -> SyncReportOut:
    fields = dataclasses.asdict(report)
    fields.pop("connection_id")
    return SyncReportOut(**fields)


async def _synced(business_id: UUID, row: dict[str, Any], report: SyncReport) -> ConnectionSynced:
    answer = ConnectionSynced(connection=_out(row), sync=_report(report))
    answer.connection = localize(answer.connection, await business_zone(business_id))
    return answer


class CalendarConnectionController(Controller):
    path = "/v1/businesses/{business_id:uuid}/staff/{staff_id:uuid}/calendars"
    tags = ["calendars"]

    @post(
        summary="Connect an outside calendar of a member of staff (managers)",
        description=(
            "An ICS subscription URL or a CalDAV calendar. Its busy times become blocks "
            "the database enforces like bookings (synced every 15 minutes and on demand); "
            "bookings an outside event overlaps go through the lost-slot recovery and are "
            "listed in `sync.conflicts`. A URL the outbound policy refuses (scheme, private "
            "or loopback address) is a 422; a source that cannot be read is a status on "
            "the connection (`last_error`). See docs/calendars.md."
        ),
        status_code=201,
        opt=STAFF_ONLY,
    )
    async def connect(
        self,
        business_id: FromPath[UUID],
        staff_id: FromPath[UUID],
        data: JSONBody[ConnectionCreate],
        principal: NamedDependency[Principal],
    ) -> ConnectionSynced:
        row, report = await connections.connect(
            principal,
            business_id,
            staff_id,
            kind=data.kind,
            url=data.url,
            username=data.username,
            password=data.password,
            email=data.email,
            write_back=data.write_back,
        )
        return await _synced(business_id, row, report)

    @get(summary="A member of staff's outside calendars and their status", opt=STAFF_ONLY)
    async def list_connections(
        self,
        business_id: FromPath[UUID],
        staff_id: FromPath[UUID],
        principal: NamedDependency[Principal],
    ) -> list[ConnectionOut]:
        rows = await connections.list_connections(principal, business_id, staff_id)
        return localize([_out(row) for row in rows], await business_zone(business_id))

    @post(
        "/{connection_id:uuid}/sync",
        summary="Sync an outside calendar now (managers); the answer is the sync's report",
        status_code=200,
        opt=STAFF_ONLY,
    )
    async def sync_now(
        self,
        business_id: FromPath[UUID],
        staff_id: FromPath[UUID],
        connection_id: FromPath[UUID],
        principal: NamedDependency[Principal],
    ) -> ConnectionSynced:
        row, report = await connections.sync_now(principal, business_id, staff_id, connection_id)
        return await _synced(business_id, row, report)

    @delete(
        "/{connection_id:uuid}",
        summary="Disconnect an outside calendar (managers); its busy blocks are removed",
        status_code=204,
        opt=STAFF_ONLY,
    )
    async def disconnect(
        self,
        business_id: FromPath[UUID],
        staff_id: FromPath[UUID],
        connection_id: FromPath[UUID],
        principal: NamedDependency[Principal],
    ) -> None:
        await connections.disconnect(principal, business_id, staff_id, connection_id)
