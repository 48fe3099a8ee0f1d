"""One time representation on the wire: every timestamp in answers, webhook payloads and
history entries is RFC 3339 with the business's own offset at that instant.

A generic checker walks each JSON answer; it is run for a business in Europe/Rome and
one in America/New_York, on bookings either side of the zone's next DST change, so
the expected offset differs by date.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from booking import db
from booking.access.service import create_api_key, create_partner
from booking.outbox.service import handle_event
from booking.webhooks.jobs import deliver_webhook
from booking.wire_time import localize, parse_stamp, stored_json
from booking.worker import OUTBOX_HANDLERS
from tests.support import World
from tests.webhooks.test_webhooks import Receiver

# Anything that starts like a date-time is a timestamp and must pass the check.
_LOOKS_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})"
)


def check_times(value: Any, tz: ZoneInfo, where: str = "$") -> int:
    """Assert every timestamp string in ``value`` is RFC 3339 with ``tz``'s offset at
    that instant; how many were checked."""
    if isinstance(value, dict):
        return sum(check_times(item, tz, f"{where}.{key}") for key, item in value.items())
    if isinstance(value, list):
        return sum(check_times(item, tz, f"{where}[{i}]") for i, item in enumerate(value))
    if isinstance(value, str) and _LOOKS_LIKE.match(value):
        assert _RFC3339.fullmatch(value), f"{where}: {value!r} is not RFC 3339"
        moment = datetime.fromisoformat(value)
        expected = moment.astimezone(tz).utcoffset()
        assert moment.utcoffset() == expected, f"{where}: {value!r}, {tz.key} is {expected}"
        if expected != timedelta(0):
            assert not value.endswith(("Z", "+00:00")), f"{where}: {value!r} is UTC"
        return 1
    return 0


def next_dst_change(tz: ZoneInfo) -> date:
    day = datetime.now(tz).date()
    noon = datetime.combine(day, time(12), tzinfo=tz).utcoffset()
    for _ in range(400):
        day += timedelta(days=1)
        offset = datetime.combine(day, time(12), tzinfo=tz).utcoffset()
        if offset != noon:
            return day
    raise AssertionError(f"{tz.key} has no DST change within a year")


def test_the_checker_fails_on_utc_spaces_and_the_wrong_offset() -> None:
    rome = ZoneInfo("Europe/Rome")
    check_times({"a": ["2026-12-02T10:00:00+01:00", "2027-06-02T10:00:00+02:00"]}, rome)
    for bad in (
        "2026-12-02T09:00:00Z",
        "2026-12-02T09:00:00+00:00",
        "2026-12-02 10:00:00+01:00",
        "2027-06-02T09:00:00+01:00",  # right instant, winter offset in summer
        "2026-12-02T10:00:00",
    ):
        with pytest.raises(AssertionError):
            check_times({"x": {"y": bad}}, rome)


def test_localize_reads_the_old_stored_form_and_stores_utc() -> None:
    rome = ZoneInfo("Europe/Rome")
    old = {"starts_at": {"from": "2026-12-01 21:00:00+00:00", "to": "2026-12-02 09:00:00+00"}}
    shown = localize(old, rome)
    assert shown["starts_at"]["from"] == "2026-12-01T22:00:00+01:00"
    assert shown["starts_at"]["to"] == "2026-12-02 09:00:00+00"  # not a whole stamp: kept
    moment = datetime(2026, 12, 1, 22, 0, tzinfo=rome)
    assert stored_json({"at": moment}) == '{"at": "2026-12-01T21:00:00+00:00"}'
    assert parse_stamp("2026-12-01T21:00:00Z") == moment
    assert localize({"note": "see you 2026-12-01 at 10"}, rome) == {
        "note": "see you 2026-12-01 at 10"
    }


async def _business(zone: str) -> dict[str, Any]:
    async with db.transaction() as conn:
        business_id = await conn.fetchval(
            "INSERT INTO business (slug, name, time_zone, locale, change_cutoff_minutes, "
            "max_changes, min_notice_minutes, slot_step_minutes) "
            "VALUES ($1, $2, $3, 'en', 60, 5, 0, 30) RETURNING id",
            "wire-" + re.sub(r"[^a-z0-9]+", "-", zone.lower()),
            f"Wire {zone}",
            zone,
        )
        staff = []
        for name in ("Ada", "Bo"):
            staff_id = await conn.fetchval(
                "INSERT INTO staff (business_id, name) VALUES ($1, $2) RETURNING id",
                business_id,
                name,
            )
            staff.append(staff_id)
            for weekday in range(7):
                await conn.execute(
                    "INSERT INTO working_hours (business_id, staff_id, weekday, opens_at, "
                    "closes_at) VALUES ($1, $2, $3, '09:00', '18:00')",
                    business_id,
                    staff_id,
                    weekday,
                )
        service_id = await conn.fetchval(
            "INSERT INTO service (business_id, name, duration_minutes, buffer_before_minutes, "
            "buffer_after_minutes, requires_confirmation) VALUES ($1, 'Cut', 30, 0, 0, false) "
            "RETURNING id",
            business_id,
        )
        for staff_id in staff:
            await conn.execute(
                "INSERT INTO service_staff (business_id, service_id, staff_id) "
                "VALUES ($1, $2, $3)",
                business_id,
                service_id,
                staff_id,
            )
    partner = await create_partner(f"Partner {zone}")
    manager = await create_api_key(
        kind="staff", role="manager", business_ids=[business_id], name="manager"
    )
    partner_key = await create_api_key(
        kind="partner",
        partner_id=partner,
        business_ids=[business_id],
        scopes=[
            "availability:read",
            "bookings:read",
            "bookings:write",
            "bookings:change",
            "bookings:cancel",
            "webhooks:manage",
        ],
    )
    return {
        "id": business_id,
        "staff": staff,
        "service": service_id,
        "manager": manager.key,
        "partner": partner_key.key,
    }


@pytest.mark.parametrize("zone", ["Europe/Rome", "America/New_York"])
async def test_every_answer_payload_and_history_entry_is_in_the_business_zone(
    world: World, receiver: Receiver, zone: str
) -> None:
    tz = ZoneInfo(zone)
    biz = await _business(zone)
    b = biz["id"]
    change_day = next_dst_change(tz)
    before, after = change_day - timedelta(days=2), change_day + timedelta(days=2)

    def local(day: date, hour: int) -> str:
        return datetime.combine(day, time(hour), tzinfo=tz).isoformat()

    def client(key: str) -> httpx.AsyncClient:
        return world.client(None, headers={"Authorization": f"Bearer {key}"})

    partner, manager = client(biz["partner"]), client(biz["manager"])
    checked = 0

    async def ok(response: httpx.Response, status: int = 200) -> Any:
        nonlocal checked
        assert response.status_code == status, response.text
        body = response.json()
        checked += check_times(body, tz)
        return body

    hook = await ok(
        await partner.post(
            "/v1/webhook-endpoints",
            json={
                "url": f"{receiver.url}/w",
                "event_types": ["booking.created", "booking.changed", "offer.created"],
            },
        ),
        201,
    )
    receiver.secrets["w"] = hook["secret"]
    assert hook["endpoint"]["time_zone"] == zone
    await ok(await partner.get("/v1/webhook-endpoints"))

    # Requests may use any offset: UTC here, answers come back local.
    free = await ok(
        await partner.get(
            f"/v1/businesses/{b}/availability",
            params={
                "service_id": str(biz["service"]),
                "from": datetime.combine(before, time(0), tzinfo=tz).astimezone(UTC).isoformat(),
                "to": datetime.combine(after, time(23), tzinfo=tz).astimezone(UTC).isoformat(),
            },
        )
    )
    offsets = {datetime.fromisoformat(s["starts_at"]).utcoffset() for s in free["slots"]}
    assert len(offsets) == 2  # the range crosses the DST change

    held = await ok(
        await partner.post(
            f"/v1/businesses/{b}/holds",
            json={"service_id": str(biz["service"]), "starts_at": local(before, 10)},
        ),
        201,
    )
    booked = await ok(
        await partner.post(
            f"/v1/holds/{held['hold']['id']}/confirm",
            json={
                "hold_token": held["hold_token"],
                "customer": {"name": "Ann", "phone": "+12125550101"},
            },
        ),
        201,
    )
    assert booked["time_zone"] == zone
    assert booked["starts_at"] == local(before, 10)

    utc_start = datetime.combine(before, time(11), tzinfo=tz).astimezone(UTC)
    direct = await ok(  # the partner's too, so its webhook sees every event below
        await partner.post(
            f"/v1/businesses/{b}/bookings",
            json={
                "service_id": str(biz["service"]),
                "starts_at": utc_start.isoformat().replace("+00:00", "Z"),
                "staff_id": str(biz["staff"][1]),
                "customer": {"name": "Ben", "phone": "+12125550102"},
            },
        ),
        201,
    )
    assert direct["starts_at"] == local(before, 11)
    moved = await ok(
        await partner.patch(f"/v1/bookings/{direct['id']}", json={"starts_at": local(after, 11)})
    )
    assert moved["starts_at"] == local(after, 11)
    await ok(await manager.get(f"/v1/bookings/{direct['id']}"))
    history = await ok(await manager.get(f"/v1/bookings/{direct['id']}/history"))
    change = history[-1]["changes"]["starts_at"]
    assert (change["from"], change["to"]) == (local(before, 11), local(after, 11))
    assert change["from"][-6:] != change["to"][-6:]  # two offsets in one entry
    await ok(
        await manager.get(
            f"/v1/businesses/{b}/bookings",
            params={"from": local(before, 0), "to": local(after + timedelta(days=1), 0)},
        )
    )
    await ok(await manager.post(f"/v1/bookings/{moved['id']}/waitlist"), 201)

    # Time off over the partner's booking: a lost-slot offer, the risk view, promises.
    lost = await ok(
        await manager.post(
            f"/v1/businesses/{b}/staff/{booked['staff_id']}/time-off",
            json={"starts_at": local(before, 9), "ends_at": local(before, 13)},
        ),
        201,
    )
    (offer,) = lost["offers"]
    await ok(await manager.get(f"/v1/offers/{offer['id']}"))
    risk = await ok(
        await manager.get(f"/v1/businesses/{b}/front-desk/risk", params={"day": str(before)})
    )
    assert risk["at_risk"]
    await ok(await manager.get(f"/v1/businesses/{b}/promises/stats"))
    keys = await ok(await manager.get("/v1/api-keys"))
    assert {key["time_zone"] for key in keys} == {zone}

    # The outbox's events through the handlers: SMS rows, webhook deliveries, payloads.
    async with db.connection() as conn:
        outbox_ids = [
            row["id"]
            for row in await conn.fetch("SELECT id FROM outbox WHERE business_id = $1", b)
        ]
    deliveries = []
    for outbox_id in outbox_ids:
        jobs = await handle_event(outbox_id, OUTBOX_HANDLERS) or []
        deliveries += [job.args[0] for job in jobs if job.function == "deliver_webhook"]
    assert len(deliveries) >= 4  # created twice, changed, offer
    for delivery_id in deliveries:
        assert await deliver_webhook({}, delivery_id) == "delivered"
    assert receiver.rejected == []
    for _, event in receiver.received:
        checked += check_times(event, tz)
        assert event["data"]["time_zone"] == zone
    changed = [e for _, e in receiver.received if e["type"] == "booking.changed"]
    assert changed[0]["data"]["starts_at"] == local(after, 11)
    await ok(await partner.get(f"/v1/webhook-endpoints/{hook['endpoint']['id']}/deliveries"))
    messages = await ok(await manager.get(f"/v1/bookings/{direct['id']}/messages"))
    assert messages
    assert checked > 60
