"""Four weeks of past journeys for the demo salon, so the manager's journey page
(``/desk/journey``) has something to show.

The past cannot be booked through the API (minimum notice, no past slots), so this writes
the rows the features would have written, as the journey's seeded test does: bookings
(completed, no-show, cancelled; web, partner and front desk), their history (created,
confirmed after a wait, changed by whom, at risk, checked in, completed), the SMS
(confirmations, reminders delivered or not, lost-slot offers, changes, cancellations,
feedback questions), lost-slot offers accepted or expired, feedback scores with comments,
and promises kept or broken. Nothing here is open or pending, so no worker job picks it
up: no SMS is sent for the past. Deterministic for a given seed.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from booking.bookings.references import new_reference_codes

HISTORY_DAYS = 28
PAST_CUSTOMERS = (
    ("Giorgia Marini", "+393331234611", "it"),
    ("Matteo Conti", "+393331234612", "it"),
    ("Elena Fontana", "+393331234613", "it"),
    ("Davide Romano", "+393331234614", "it"),
    ("Francesca Lombardi", "+393331234615", "it"),
    ("Alessandro Costa", "+393331234616", "it"),
    ("Martina Esposito", "+393331234617", "it"),
    ("Olivia Brown", "+447700900124", "en"),
    ("Valentina Bruno", "+393331234619", "it"),
    ("Simone Gallo", "+393331234620", "it"),
)
WEEKDAY_STARTS = (time(9), time(11, 30), time(14, 15))
SATURDAY_STARTS = (time(9), time(11))
SCORES = (5, 5, 5, 5, 4, 4, 4, 3, 3, 2, 1)
LOW_COMMENTS = ("troppa attesa", "il colore non è quello chiesto", "spostato due volte")
GOOD_COMMENTS = ("", "", "grazie!", "perfetto", "bravissima")


class _History:
    def __init__(self, conn: asyncpg.Connection, business_id: UUID, rng: random.Random) -> None:
        self.conn = conn
        self.business_id = business_id
        self.rng = rng
        self.sms_count = 0

    async def event(
        self,
        booking_id: UUID,
        event: str,
        at: datetime,
        actor: tuple[str, str],
        channel: str,
        **extra: Any,
    ) -> None:
        await self.conn.execute(
            "INSERT INTO booking_history (booking_id, business_id, occurred_at, event, "
            "from_status, to_status, actor_type, actor_id, channel, changes, reason) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11)",
            booking_id,
            self.business_id,
            at,
            event,
            extra.get("from_status"),
            extra.get("to_status"),
            actor[0],
            actor[1],
            channel,
            json.dumps(extra.get("changes", {})),
            extra.get("reason"),
        )

    async def sms(
        self, booking: dict[str, Any], template: str, at: datetime, status: str = "delivered"
    ) -> UUID:
        self.sms_count += 1
        message_id: UUID = await self.conn.fetchval(
            """
            INSERT INTO message (business_id, booking_id, customer_id, dedupe_key, template,
                locale, to_phone, body, status, provider, provider_status, error_code,
                attempts, created_at, updated_at, sent_at, delivered_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'demo', $9,
                    CASE WHEN $9 = 'failed' THEN 30003 END, 1, $10::timestamptz,
                    $10::timestamptz, $10::timestamptz,
                    CASE WHEN $9 = 'delivered' THEN $10::timestamptz + interval '20 seconds' END)
            RETURNING id
            """,
            self.business_id,
            booking["id"],
            booking["customer_id"],
            f"demo-history:{booking['id']}:{self.sms_count}",
            template,
            booking["locale"],
            booking["phone"],
            f"(demo history: the {template} SMS of {booking['reference_code']})",
            status,
            at,
        )
        return message_id

    async def promise(
        self, booking_id: UUID, kind: str, made: datetime, due: datetime, kept: bool
    ) -> None:
        resolved = due - timedelta(minutes=20) if kept else due
        await self.conn.execute(
            "INSERT INTO promise (business_id, booking_id, kind, subject, made_at, nudge_at, "
            "due_at, status, resolved_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            self.business_id,
            booking_id,
            kind,
            f"demo-history:{kind}:{booking_id}",
            made,
            due - (due - made) / 4,
            due,
            "kept" if kept else "broken",
            resolved,
        )


async def seed_history(
    conn: asyncpg.Connection, business_id: UUID, seed: int = 7, today: date | None = None
) -> int:
    """Past journeys of the last :data:`HISTORY_DAYS` days; returns how many bookings."""
    rng = random.Random(seed)
    zone = await conn.fetchval("SELECT time_zone FROM business WHERE id = $1", business_id)
    tz = ZoneInfo(zone)
    today = today or datetime.now(tz).date()
    staff = await conn.fetch(
        "SELECT id, name FROM staff WHERE business_id = $1 ORDER BY name", business_id
    )
    services = await conn.fetch(
        "SELECT s.id, s.name, s.duration_minutes, s.buffer_before_minutes, "
        "s.buffer_after_minutes, s.requires_confirmation, array_agg(ss.staff_id) AS staff "
        "FROM service s JOIN service_staff ss ON ss.service_id = s.id "
        "WHERE s.business_id = $1 GROUP BY s.id, s.name, s.duration_minutes, "
        "s.buffer_before_minutes, s.buffer_after_minutes, s.requires_confirmation ORDER BY s.name",
        business_id,
    )
    customers = [await _customer(conn, business_id, *who) for who in PAST_CUSTOMERS]
    history = _History(conn, business_id, rng)
    slots: list[tuple[datetime, asyncpg.Record]] = []
    for back in range(HISTORY_DAYS, 0, -1):
        day = today - timedelta(days=back)
        if day.weekday() == 6:
            continue
        starts = SATURDAY_STARTS if day.weekday() == 5 else WEEKDAY_STARTS
        for person in staff:
            for start in starts:
                if rng.random() < 0.35:
                    continue  # a free slot
                slots.append((datetime.combine(day, start, tz), person))
    codes = new_reference_codes(len(slots))
    for (starts_at, person), code in zip(slots, codes, strict=True):
        fits = [s for s in services if person["id"] in s["staff"]]
        if starts_at.time() >= time(14) or starts_at.weekday() == 5:
            fits = [s for s in fits if s["duration_minutes"] <= 90] or fits
        service = rng.choice(fits)
        await _journey(history, tz, starts_at, person, service, rng.choice(customers), code)
    return len(slots)


async def _customer(
    conn: asyncpg.Connection, business_id: UUID, name: str, phone: str, locale: str
) -> dict[str, Any]:
    found = await conn.fetchval(
        "SELECT id FROM customer WHERE business_id = $1 AND phone = $2", business_id, phone
    )
    if found is None:
        found = await conn.fetchval(
            "INSERT INTO customer (business_id, name, phone, locale) VALUES ($1, $2, $3, $4) "
            "RETURNING id",
            business_id,
            name,
            phone,
            locale,
        )
    return {"customer_id": found, "name": name, "phone": phone, "locale": locale}


ACTORS = {
    "web": ("customer", "demo-customer"),
    "partner": ("partner", "demo-marketplace"),
    "front_desk": ("staff", "demo-front-desk"),
}


async def _journey(
    h: _History,
    tz: ZoneInfo,
    starts_at: datetime,
    person: asyncpg.Record,
    service: asyncpg.Record,
    customer: dict[str, Any],
    code: str,
) -> None:
    rng = h.rng
    channel = rng.choices(("web", "partner", "front_desk"), (5, 3, 2))[0]
    actor = ACTORS[channel]
    created = starts_at - timedelta(days=rng.randint(1, 12), hours=rng.randint(0, 8))
    roll = rng.random()
    lost = roll < 0.07
    outcome = "cancelled" if roll > 0.92 else "no_show" if roll > 0.85 else "completed"
    lost_recovered = lost and rng.random() < 0.7
    if lost and not lost_recovered:
        outcome = "cancelled"
    changed = lost_recovered or rng.random() < 0.15
    decided: datetime | None = None
    ends_at = starts_at + timedelta(minutes=service["duration_minutes"])
    booking_id: UUID = await h.conn.fetchval(
        """
        INSERT INTO booking (business_id, staff_id, service_id, customer_id, status, channel,
            reference_code, starts_at, ends_at, blocked_from, blocked_until, version,
            change_count, cancel_reason, created_by, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
        RETURNING id
        """,
        h.business_id,
        person["id"],
        service["id"],
        customer["customer_id"],
        outcome,
        channel,
        code,
        starts_at,
        ends_at,
        starts_at - timedelta(minutes=service["buffer_before_minutes"]),
        ends_at + timedelta(minutes=service["buffer_after_minutes"]),
        2 + int(changed),
        int(changed),
        "customer cancelled" if outcome == "cancelled" else None,
        actor[1],
        created,
    )
    b = {**customer, "id": booking_id, "reference_code": code}
    pending = service["requires_confirmation"]
    await h.event(
        booking_id,
        "booking.created",
        created,
        actor,
        channel,
        to_status="pending" if pending else "confirmed",
    )
    if pending:
        await h.sms(b, "booking_pending", created + timedelta(seconds=5))
        waited = timedelta(minutes=rng.choice((15, 40, 70, 100, 180)))
        confirmed_at = created + waited
        due = created + timedelta(minutes=120)
        await h.promise(booking_id, "confirmation", created, due, kept=confirmed_at <= due)
        await h.event(
            booking_id,
            "booking.confirmed",
            confirmed_at,
            ("staff", "demo-manager"),
            "front_desk",
            from_status="pending",
            to_status="confirmed",
        )
        await h.sms(b, "booking_confirmed", confirmed_at + timedelta(seconds=5))
    else:
        await h.sms(b, "booking_confirmed", created + timedelta(seconds=5))
    if lost:
        at = starts_at - timedelta(days=1, hours=6)
        await h.event(
            booking_id,
            "booking.at_risk",
            at,
            ("system", "guarantee"),
            "system",
            reason=f"{person['name']} off sick",
        )
        await h.sms(b, "offer_lost_slot", at + timedelta(seconds=10))
        decided = at + timedelta(minutes=rng.randint(10, 110)) if lost_recovered else None
        await h.conn.execute(
            "INSERT INTO reschedule_offer (business_id, booking_id, kind, status, reason, "
            "expires_at, accepted_position, decided_by, created_at, decided_at) "
            "VALUES ($1, $2, 'lost_slot', $3, $4, $5, $6, $7, $8, $9)",
            h.business_id,
            booking_id,
            "accepted" if lost_recovered else "expired",
            f"{person['name']} off sick",
            at + timedelta(hours=6),
            1 if lost_recovered else None,
            "customer" if lost_recovered else None,
            at,
            decided or at + timedelta(hours=6),
        )
        await h.promise(
            booking_id,
            "offer_follow_up",
            at,
            at + timedelta(hours=6),
            kept=lost_recovered or rng.random() < 0.5,
        )
    if changed:
        at = decided or starts_at - timedelta(days=2, hours=3)
        who = ("customer", "demo-customer") if lost else rng.choice(list(ACTORS.values()))
        await h.event(
            booking_id,
            "booking.changed",
            at,
            who,
            "web" if who[0] == "customer" else "front_desk",
            changes={"staff_id": {"to": str(person["id"])}},
        )
        await h.sms(b, "booking_changed", at + timedelta(seconds=5))
    if outcome == "cancelled":
        at = starts_at - (timedelta(hours=18) if lost else timedelta(days=1, hours=2))
        await h.event(
            booking_id,
            "booking.cancelled",
            at,
            ("customer", "demo-customer"),
            "web",
            from_status="confirmed",
            to_status="cancelled",
        )
        await h.sms(b, "booking_cancelled", at + timedelta(seconds=5))
        return
    reminder = rng.choices(("delivered", "sent", "failed"), (85, 10, 5))[0]
    await h.sms(b, "reminder", starts_at - timedelta(days=1), reminder)
    staff_actor = ("staff", "demo-front-desk")
    if outcome == "no_show":
        await h.event(
            booking_id,
            "booking.no_show",
            starts_at + timedelta(minutes=20),
            staff_actor,
            "front_desk",
            from_status="confirmed",
            to_status="no_show",
        )
        return
    for event, at, before, after in (
        ("booking.checked_in", starts_at - timedelta(minutes=3), "confirmed", "checked_in"),
        ("booking.completed", ends_at, "checked_in", "completed"),
    ):
        await h.event(
            booking_id, event, at, staff_actor, "front_desk", from_status=before, to_status=after
        )
    asked = ends_at + timedelta(hours=2)
    question = await h.sms(b, "feedback_request", asked)
    if rng.random() < 0.3:
        await h.conn.execute(
            "INSERT INTO feedback (business_id, booking_id, status, ask_at, asked_at, "
            "message_id) VALUES ($1, $2, 'asked', $3, $3, $4)",
            h.business_id,
            booking_id,
            asked,
            question,
        )
        return
    score = rng.choice(SCORES)
    if changed and score > 2 and rng.random() < 0.4:
        score = 2  # a change the customer did not enjoy
    received = asked + timedelta(minutes=rng.randint(5, 300))
    comment = rng.choice(LOW_COMMENTS if score <= 2 else GOOD_COMMENTS)
    called_back = score <= 2 and rng.random() < 0.7
    await h.conn.execute(
        "INSERT INTO feedback (business_id, booking_id, status, ask_at, asked_at, message_id, "
        "score, comment, channel, received_at, called_back_at) "
        "VALUES ($1, $2, 'received', $3, $3, $4, $5, $6, 'sms', $7, $8)",
        h.business_id,
        booking_id,
        asked,
        question,
        score,
        comment,
        received,
        received + timedelta(hours=5) if called_back else None,
    )
    await h.event(
        booking_id,
        "feedback.received",
        received,
        ("customer", "demo-customer"),
        "sms",
        changes={"score": score, "comment": comment},
    )
    if score <= 2:
        await h.promise(
            booking_id, "callback", received, received + timedelta(hours=24), kept=called_back
        )
