"""Demo data: a salon in Rome with three staff, three services, a week of bookings ahead
and four weeks of past journeys behind (:mod:`booking.demo_history`: changes, lost slots,
feedback, promises kept and broken, for the manager's journey page).

Idempotent: a second run finds the business and adds nothing but fresh demo keys.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from uuid import UUID

from booking import db
from booking.access.principal import Principal
from booking.access.service import IssuedKey, create_api_key, create_partner
from booking.availability.context import load_service_context
from booking.availability.service import search_slots
from booking.bookings.checks import CustomerInput
from booking.bookings.placing import create_booking
from booking.demo_history import seed_history
from booking.errors import DomainError

DEMO_SLUG = "salone-bellavista"
STAFF = ("Giulia Rossi", "Marco Bianchi", "Sara Conti")
SERVICES = (
    # name, minutes, buffer before, buffer after, price cents, needs confirmation, staff indexes
    ("Taglio donna", 45, 0, 10, 3500, False, (0, 1, 2)),
    ("Colore", 90, 10, 15, 6500, False, (0, 2)),
    ("Trattamento cheratina", 120, 0, 15, 12000, True, (1, 2)),
)
CUSTOMERS = (
    ("Anna Ferri", "+393331234501", "it"),
    ("Luca Moretti", "+393331234502", "it"),
    ("Emma Smith", "+447700900123", "en"),
    ("Chiara Galli", "+393331234504", "it"),
    ("Paolo Ricci", "+393331234505", "it"),
    ("Sofia Greco", "+393331234506", "it"),
)


async def seed_demo(bookings: int = 24, seed: int = 7) -> UUID:
    """Create the demo business if missing; return its id."""
    async with db.connection() as conn:
        existing = await conn.fetchval("SELECT id FROM business WHERE slug = $1", DEMO_SLUG)
    if existing is not None:
        return UUID(str(existing))
    async with db.transaction() as conn:
        business_id: UUID = await conn.fetchval(
            """
            INSERT INTO business (slug, name, time_zone, locale, address, on_duty_phone)
            VALUES ($1, 'Salone Bellavista', 'Europe/Rome', 'it', 'Via dei Coronari 12, Roma',
                    '+390612345678') RETURNING id
            """,
            DEMO_SLUG,
        )
        await conn.execute(  # the slug's reservation, as the catalog API makes it
            "INSERT INTO business_slug (slug, business) VALUES ($1, $2)", DEMO_SLUG, business_id
        )
        staff_ids: list[UUID] = []
        for name in STAFF:
            staff_id = await conn.fetchval(
                "INSERT INTO staff (business_id, name) VALUES ($1, $2) RETURNING id",
                business_id,
                name,
            )
            staff_ids.append(staff_id)
            for weekday in range(5):  # Monday to Friday, 09:00-18:00
                await conn.execute(
                    "INSERT INTO working_hours (business_id, staff_id, weekday, opens_at, "
                    "closes_at) VALUES ($1, $2, $3, $4, $5)",
                    business_id,
                    staff_id,
                    weekday,
                    time(9),
                    time(18),
                )
            await conn.execute(  # Saturday morning
                "INSERT INTO working_hours (business_id, staff_id, weekday, opens_at, closes_at)"
                " VALUES ($1, $2, 5, $3, $4)",
                business_id,
                staff_id,
                time(9),
                time(13),
            )
        for name, minutes, before, after, price, confirm, who in SERVICES:
            service_id = await conn.fetchval(
                """
                INSERT INTO service (business_id, name, duration_minutes, buffer_before_minutes,
                    buffer_after_minutes, price_cents, requires_confirmation)
                VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id
                """,
                business_id,
                name,
                minutes,
                before,
                after,
                price,
                confirm,
            )
            for index in who:
                await conn.execute(
                    "INSERT INTO service_staff (business_id, service_id, staff_id) "
                    "VALUES ($3, $1, $2)",
                    service_id,
                    staff_ids[index],
                    business_id,
                )
    await _seed_bookings(business_id, bookings, random.Random(seed))
    async with db.transaction() as conn:
        await seed_history(conn, business_id, seed)
    return business_id


async def _seed_bookings(business_id: UUID, count: int, rng: random.Random) -> None:
    seeder = Principal(kind="system", id="demo-seed", business_ids=frozenset({business_id}))
    async with db.connection() as conn:
        service_ids = [
            row["id"]
            for row in await conn.fetch(
                "SELECT id FROM service WHERE business_id = $1 ORDER BY name", business_id
            )
        ]
    now = datetime.now(UTC)
    made = 0
    for attempt in range(count * 4):
        if made >= count:
            break
        service_id = service_ids[attempt % len(service_ids)]
        async with db.connection() as conn:
            context = await load_service_context(conn, business_id, service_id)
            slots = await search_slots(conn, context, now, now + timedelta(days=7))
        if not slots:
            continue
        slot = rng.choice(slots)
        name, phone, locale = rng.choice(CUSTOMERS)
        try:
            await create_booking(
                seeder,
                business_id,
                service_id,
                slot.starts_at,
                CustomerInput(name, phone, locale),
                staff_id=slot.staff_id,
                channel="web",
            )
            made += 1
        except DomainError:
            continue


async def issue_demo_keys(business_id: UUID) -> dict[str, IssuedKey]:
    """Fresh keys for trying the API (secrets are shown once, so each run makes new ones)."""
    partner_id = await create_partner("Demo Marketplace")
    return {
        "front desk": await create_api_key(
            kind="staff", role="front_desk", business_ids=[business_id], name="demo front desk"
        ),
        "manager": await create_api_key(
            kind="staff", role="manager", business_ids=[business_id], name="demo manager"
        ),
        "partner": await create_api_key(
            kind="partner",
            partner_id=partner_id,
            business_ids=[business_id],
            scopes=[
                "availability:read",
                "bookings:read",
                "bookings:write",
                "bookings:change",
                "bookings:cancel",
                "webhooks:manage",
            ],
            name="demo marketplace",
        ),
    }
