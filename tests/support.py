"""Shared test helpers: a small business world built through the services."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
from aiohttp import web

from booking import db
from booking.access.service import create_api_key, create_partner

ROOT = Path(__file__).resolve().parents[1]


@contextlib.asynccontextmanager
async def local_server(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 at a free port for the block; its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


TEST_SECRET = "test-secret-not-for-production"  # BOOKING_SECRET_KEY of every test process
ROME = ZoneInfo("Europe/Rome")


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rome(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ROME)


def days_ahead(days: int) -> date:
    return datetime.now(ROME).date() + timedelta(days=days)


def at(days: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in Rome, ``days`` from today."""
    return rome(days_ahead(days), hour, minute)


@dataclass
class World:
    base_url: str
    business_id: UUID
    other_business_id: UUID
    staff: list[UUID]
    cut: UUID  # 30 min, 10 min buffer after, all staff
    colour: UUID  # 60 min, 10/10 buffers, staff 0 and 1
    consult: UUID  # 30 min, needs the business's confirmation, staff 2
    keys: dict[str, str]
    partner_id: UUID
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, who: str | None = "front_desk", **kwargs: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.keys[who]}"} if who else {}
        headers.update(kwargs.pop("headers", {}))
        client = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30, **kwargs)
        self.clients.append(client)
        return client

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()

    def booking_body(
        self,
        starts_at: datetime,
        *,
        service: UUID | None = None,
        staff: UUID | None = None,
        phone: str = "+393331234567",
        name: str = "Anna Ferri",
        **extra: Any,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "service_id": str(service or self.cut),
            "starts_at": starts_at.isoformat(),
            "customer": {"name": name, "phone": phone, "locale": "it"},
        }
        if staff is not None:
            body["staff_id"] = str(staff)
        body.update(extra)
        return body


async def _business(conn: Any, slug: str, name: str) -> UUID:
    business_id: UUID = await conn.fetchval(
        """
        INSERT INTO business (slug, name, time_zone, locale, change_cutoff_minutes, max_changes,
                              min_notice_minutes, slot_step_minutes)
        VALUES ($1, $2, 'Europe/Rome', 'it', 120, 3, 60, 15) RETURNING id
        """,
        slug,
        name,
    )
    return business_id


async def build_world(base_url: str) -> World:
    async with db.transaction() as conn:
        business_id = await _business(conn, "salone-test", "Salone Test")
        other_id = await _business(conn, "other-salon", "Other Salon")
        staff: list[UUID] = []
        for name in ("Giulia", "Marco", "Sara"):
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
        other_staff = await conn.fetchval(
            "INSERT INTO staff (business_id, name) VALUES ($1, 'Elsewhere') RETURNING id", other_id
        )

        async def service(
            business: UUID,
            name: str,
            minutes: int,
            before: int,
            after: int,
            confirm: bool,
            who: list[UUID],
        ) -> UUID:
            service_id: UUID = await conn.fetchval(
                "INSERT INTO service (business_id, name, duration_minutes, buffer_before_minutes,"
                " buffer_after_minutes, requires_confirmation) VALUES ($1, $2, $3, $4, $5, $6) "
                "RETURNING id",
                business,
                name,
                minutes,
                before,
                after,
                confirm,
            )
            for staff_id in who:
                await conn.execute(
                    "INSERT INTO service_staff (business_id, service_id, staff_id) "
                    "VALUES ($1, $2, $3)",
                    business,
                    service_id,
                    staff_id,
                )
            return service_id

        cut = await service(business_id, "Cut", 30, 0, 10, False, staff)
        colour = await service(business_id, "Colour", 60, 10, 10, False, staff[:2])
        consult = await service(business_id, "Consult", 30, 0, 0, True, staff[2:])
        await service(other_id, "Other cut", 30, 0, 0, False, [other_staff])
    partner_id = await create_partner("Marketplace A")
    other_partner = await create_partner("Marketplace B")
    all_partner_scopes = [
        "availability:read",
        "bookings:read",
        "bookings:write",
        "bookings:change",
        "bookings:cancel",
    ]
    keys = {
        "admin": (await create_api_key(kind="admin", name="admin")).key,
        "front_desk": (
            await create_api_key(kind="staff", role="front_desk", business_ids=[business_id])
        ).key,
        "manager": (
            await create_api_key(kind="staff", role="manager", business_ids=[business_id])
        ).key,
        "partner": (
            await create_api_key(
                kind="partner",
                partner_id=partner_id,
                business_ids=[business_id],
                scopes=all_partner_scopes,
            )
        ).key,
        "partner_b": (
            await create_api_key(
                kind="partner",
                partner_id=other_partner,
                business_ids=[business_id],
                scopes=all_partner_scopes,
            )
        ).key,
        "partner_readonly": (
            await create_api_key(
                kind="partner",
                partner_id=partner_id,
                business_ids=[business_id],
                scopes=["availability:read", "bookings:read"],
            )
        ).key,
        "app": (await create_api_key(kind="app", business_ids=[business_id])).key,
        "other_staff": (
            await create_api_key(kind="staff", role="manager", business_ids=[other_id])
        ).key,
    }
    return World(
        base_url=base_url,
        business_id=business_id,
        other_business_id=other_id,
        staff=staff,
        cut=cut,
        colour=colour,
        consult=consult,
        keys=keys,
        partner_id=partner_id,
    )


async def active_bookings_between(start: datetime, end: datetime) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT * FROM booking WHERE status IN ('held','pending','confirmed','checked_in') "
            "AND tstzrange(blocked_from, blocked_until) && tstzrange($1, $2)",
            start,
            end,
        )
    return [dict(row) for row in rows]


async def add_cabins(world: World, count: int, service: UUID | None = None) -> list[UUID]:
    """``count`` cabins (group "cabin"), and the service (default: cut) needs one of them."""
    manager = world.client("manager")
    made = []
    for number in range(1, count + 1):
        answer = await manager.post(
            f"/v1/businesses/{world.business_id}/resources",
            json={"kind": "room", "name": f"Cabin {number}", "group": "cabin"},
        )
        assert answer.status_code == 201, answer.text
        made.append(UUID(answer.json()["id"]))
    needs = await manager.put(
        f"/v1/businesses/{world.business_id}/services/{service or world.cut}/needs",
        json={"resource_group": "cabin"},
    )
    assert needs.status_code == 200, needs.text
    assert needs.json()["resource_ids"] == [str(c) for c in made]
    return made
