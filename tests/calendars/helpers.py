"""Helpers for calendar tests: iCalendar bodies, Radicale calendars, connecting via the API."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import caldav
import icalendar
import requests

from tests.support import World


def event(
    uid: str,
    starts: datetime,
    ends: datetime,
    *,
    rrule: dict[str, Any] | None = None,
    exdate: list[datetime] | None = None,
    recurrence_id: datetime | None = None,
    **props: str,
) -> icalendar.Event:
    item = icalendar.Event()
    item.add("uid", uid)
    item.add("dtstamp", datetime(2026, 12, 1, 0, 0, tzinfo=starts.tzinfo))
    item.add("dtstart", starts)
    item.add("dtend", ends)
    item.add("summary", "Dentist (private)")
    if rrule:
        item.add("rrule", rrule)
    for moment in exdate or []:
        item.add("exdate", moment)
    if recurrence_id is not None:
        item.add("recurrence-id", recurrence_id)
    for name, value in props.items():
        item.add(name.replace("_", "-"), value)
    return item


def calendar(*events: icalendar.Event) -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//test//calendars//EN")
    cal.add("version", "2.0")
    for item in events:
        cal.add_component(item)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())


def _dav(url: str, user: str) -> Any:
    return caldav.DAVClient(url=url, auth=requests.auth.HTTPBasicAuth(user, "x"))


def _make_calendar(base: str, user: str) -> str:
    client = _dav(f"{base}/", user)
    made = client.principal().make_calendar(name="work", cal_id=f"work-{uuid.uuid4().hex[:8]}")
    return str(made.url)


async def radicale_calendar(base: str, user: str | None = None) -> tuple[str, str]:
    """A fresh calendar collection in Radicale: (its URL, the user name)."""
    name = user or f"staff{uuid.uuid4().hex[:8]}"
    return await asyncio.to_thread(_make_calendar, base, name), name


def _client(url: str, user: str) -> Any:
    client = _dav(url, user)
    return client, client.calendar(url=url)


def _save(url: str, user: str, body: bytes) -> None:
    _, cal = _client(url, user)
    cal.save_event(body.decode())


def _uids(url: str, user: str) -> list[str]:
    _, cal = _client(url, user)
    found: list[str] = []
    for obj in cal.events():
        parsed = icalendar.Calendar.from_ical(obj.data)
        found.extend(str(e["uid"]) for e in parsed.walk("VEVENT"))
    return found


async def save_event(url: str, user: str, body: bytes) -> None:
    await asyncio.to_thread(_save, url, user, body)


async def uids_in(url: str, user: str) -> list[str]:
    return await asyncio.to_thread(_uids, url, user)


async def connect(world: World, staff: UUID, **body: Any) -> Any:
    return await world.client("manager").post(
        f"/v1/businesses/{world.business_id}/staff/{staff}/calendars", json=body
    )


async def sync(world: World, staff: UUID, connection_id: str) -> dict[str, Any]:
    response = await world.client("manager").post(
        f"/v1/businesses/{world.business_id}/staff/{staff}/calendars/{connection_id}/sync"
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer
