"""Helpers for catalog tests: a business in New York set up through the API only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.support import World

NEW_YORK = ZoneInfo("America/New_York")


def ny_day(days: int) -> date:
    return datetime.now(NEW_YORK).date() + timedelta(days=days)


def ny(days: int, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(ny_day(days), time(hour, minute), tzinfo=NEW_YORK)


def week(opens: str, closes: str) -> dict[str, Any]:
    return {
        "days": [
            {"weekday": d, "ranges": [{"opens_at": opens, "closes_at": closes}]} for d in range(7)
        ]
    }


@dataclass
class Shop:
    business_id: str
    manager: httpx.AsyncClient
    staff: list[str]  # Ann 09-17, Bob 12-20 every day
    service_id: str  # 45 min + 15 min after, both staff

    def path(self, rest: str = "") -> str:
        return f"/v1/businesses/{self.business_id}{rest}"


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def make_shop(world: World, slug: str = "ny-barber") -> Shop:
    admin = world.client("admin")
    business = await ok(
        await admin.post(
            "/v1/businesses",
            json={
                "slug": slug,
                "name": "NY Barber",
                "time_zone": "America/New_York",
                "locale": "en",
                "on_duty_phone": "+1 212 555 0123",
                "min_notice_minutes": 30,
                "reminder_offsets_minutes": [60, 1440],
                "confirm_within_minutes": 90,
                "customer_may_confirm": False,
            },
        ),
        201,
    )
    key = await ok(
        await admin.post(
            "/v1/api-keys",
            json={"kind": "staff", "role": "manager", "business_ids": [business["id"]]},
        ),
        201,
    )
    manager = world.client(None, headers={"Authorization": f"Bearer {key['key']}"})
    base = f"/v1/businesses/{business['id']}"
    staff = []
    for name, opens, closes in (("Ann", "09:00", "17:00"), ("Bob", "12:00", "20:00")):
        member = await ok(await manager.post(f"{base}/staff", json={"name": name}), 201)
        await ok(await manager.put(f"{base}/staff/{member['id']}/hours", json=week(opens, closes)))
        staff.append(member["id"])
    service = await ok(
        await manager.post(
            f"{base}/services",
            json={
                "name": "Beard trim",
                "duration_minutes": 45,
                "buffer_after_minutes": 15,
                "price_cents": 3500,
                "currency": "USD",
                "staff_ids": staff,
            },
        ),
        201,
    )
    return Shop(business["id"], manager, staff, service["id"])
