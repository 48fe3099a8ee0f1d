"""A customer's data on request (GDPR): the export holds everything, erasure leaves
nothing personal anywhere in the database while bookings' times, the history and the
counts stay; an open offer and promises are closed; the retention job erases the stale."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from booking import db
from booking.privacy.retention import anonymise_stale_customers
from booking.worker import CRON_JOBS
from tests.support import World, at

NAME = "Ottavia Quaglierini"
PHONE = "+393339876543"
SECRET_TEXT = "il codice del cancello e 4471"
FEEDBACK_TEXT = "la signora alla cassa mi conosce da anni"


async def _scan(value: str) -> dict[str, int]:
    """Every public table's rows whose text holds ``value`` (the whole database)."""
    found: dict[str, int] = {}
    async with db.connection() as conn:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'migration'"
        )
        for row in tables:
            name = row["tablename"]
            count = await conn.fetchval(
                f'SELECT count(*) FROM "{name}" t WHERE strpos(t::text, $1) > 0', value
            )
            if count:
                found[name] = count
    return found


async def _counts(business_id: UUID, customer_id: UUID) -> dict[str, Any]:
    async with db.connection() as conn:
        return dict(
            await conn.fetchrow(
                """
                SELECT
                  (SELECT count(*) FROM booking WHERE customer_id = $2) AS bookings,
                  (SELECT array_agg(starts_at ORDER BY starts_at) FROM booking
                    WHERE customer_id = $2) AS times,
                  (SELECT count(*) FROM booking_history h JOIN booking b ON b.id = h.booking_id
                    WHERE b.customer_id = $2) AS history,
                  (SELECT count(*) FROM message WHERE business_id = $1) AS messages,
                  (SELECT count(*) FROM inbound_message) AS received,
                  (SELECT count(*) FROM promise WHERE business_id = $1) AS promises,
                  (SELECT count(*) FROM reschedule_offer WHERE business_id = $1) AS offers
                """,
                business_id,
                customer_id,
            )
        )


async def test_export_then_erase_round_trip(world: World) -> None:
    desk, manager = world.client("front_desk"), world.client("manager")
    first = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(
            at(4, 10), staff=world.staff[0], phone=PHONE, name=NAME, notes=SECRET_TEXT
        ),
    )
    assert first.status_code == 201, first.text
    second = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(6, 11), staff=world.staff[1], phone=PHONE, name=NAME),
    )
    assert second.status_code == 201, second.text
    booking_id = UUID(first.json()["id"])
    async with db.connection() as conn:
        customer_id = await conn.fetchval(
            "SELECT customer_id FROM booking WHERE id = $1", booking_id
        )
        await conn.execute(
            "INSERT INTO message (business_id, booking_id, customer_id, dedupe_key, template, "
            "locale, to_phone, body, status) VALUES ($1, $2, $3, 'k1', 'booking_confirmed', 'it', "
            "$4, $5, 'sent')",
            world.business_id, booking_id, customer_id, PHONE, f"Ciao {NAME}, confermato",
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO inbound_message (provider_sid, from_phone, to_phone, body, booking_id) "
            "VALUES ('SM1', $1, '+15550000000', $2, $3)",
            PHONE, SECRET_TEXT, booking_id,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO feedback (business_id, booking_id, status, ask_at, asked_at, score, "
            "comment, channel, received_at) VALUES ($1, $2, 'received', now(), now(), 2, $3, "
            "'sms', now())",
            world.business_id, UUID(second.json()["id"]), FEEDBACK_TEXT,
        )  # fmt: skip
    # An open offer: the first booking's staff member leaves, the guarantee offers holds.
    off = await manager.patch(
        f"/v1/businesses/{world.business_id}/staff/{world.staff[0]}", json={"active": False}
    )
    assert off.status_code == 200, off.text
    async with db.connection() as conn:
        offer = await conn.fetchrow(
            "SELECT id, status FROM reschedule_offer WHERE booking_id = $1", booking_id
        )
        assert offer is not None
        assert offer["status"] == "open"
        await conn.execute(
            "INSERT INTO promise (business_id, booking_id, kind, subject, customer_phone, "
            "made_at, nudge_at, due_at) VALUES ($1, $2, 'reply', 'sms:1', $3, now(), "
            "now() + interval '1 hour', now() + interval '2 hours')",
            world.business_id, booking_id, PHONE,
        )  # fmt: skip

    found = await manager.get(
        f"/v1/businesses/{world.business_id}/customers", params={"phone": PHONE}
    )
    assert found.status_code == 200, found.text
    assert [c["id"] for c in found.json()] == [str(customer_id)]
    base = f"/v1/businesses/{world.business_id}/customers/{customer_id}"

    exported = await manager.get(f"{base}/export")
    assert exported.status_code == 200, exported.text
    document = exported.json()
    assert (document["customer"]["name"], document["customer"]["phone"]) == (NAME, PHONE)
    assert document["consents"] == {"sms": True}
    assert [b["id"] for b in document["bookings"]] == [str(booking_id), second.json()["id"]]
    assert document["bookings"][0]["notes"] == SECRET_TEXT
    assert document["bookings"][0]["history"][0]["event"] == "booking.created"
    assert [m["body"] for m in document["messages"]] == [f"Ciao {NAME}, confermato"]
    assert [m["body"] for m in document["messages_received"]] == [SECRET_TEXT]
    assert [o["status"] for o in document["offers"]] == ["open"]
    assert document["offers"][0]["options"]
    assert {p["kind"] for p in document["promises"]} >= {"reply"}
    assert [(f["score"], f["comment"]) for f in document["feedback"]] == [(2, FEEDBACK_TEXT)]
    journeys = document["journeys"]
    assert set(journeys) == {str(booking_id), second.json()["id"]}
    touchpoints = [e["touchpoint"] for e in journeys[str(booking_id)]]
    assert "booking.created" in touchpoints
    assert "booking.at_risk" in touchpoints  # the staff member left: the lost-slot offer
    for value in (NAME, PHONE, SECRET_TEXT, FEEDBACK_TEXT):
        assert await _scan(value), value  # present somewhere before the erasure

    before = await _counts(world.business_id, customer_id)
    assert (await desk.post(f"{base}/erase")).status_code == 403  # managers only
    other = await world.client("other_staff").post(
        f"/v1/businesses/{world.other_business_id}/customers/{customer_id}/erase"
    )
    assert other.status_code == 404
    erased = await manager.post(f"{base}/erase")
    assert erased.status_code == 200, erased.text
    counts = erased.json()["counts"]
    assert counts["bookings"] == 2
    assert counts["offers_withdrawn"] == 1
    assert counts["messages"] == 1
    assert counts["messages_received"] == 1

    for value in (NAME, PHONE, SECRET_TEXT, FEEDBACK_TEXT):
        assert await _scan(value) == {}, value  # nowhere in the database any more
    after_export = await manager.get(f"{base}/export")
    assert after_export.status_code == 200
    text = json.dumps(after_export.json())
    for value in (NAME, PHONE, SECRET_TEXT, FEEDBACK_TEXT, "confermato"):
        assert value not in text
    after = after_export.json()
    assert after["customer"]["name"] == "Erased customer"
    assert after["customer"]["erased_at"] is not None
    assert after["consents"] == {"sms": False}
    # Times, history and counts unchanged.
    assert await _counts(world.business_id, customer_id) == before
    assert [b["starts_at"] for b in after["bookings"]] == [
        b["starts_at"] for b in document["bookings"]
    ]
    assert [len(b["history"]) for b in after["bookings"]] == [
        len(b["history"]) for b in document["bookings"]
    ]
    assert [f["score"] for f in after["feedback"]] == [2]  # the score still counts
    for key, entries in journeys.items():  # the journey keeps every touchpoint it had;
        # the erasure adds its own (the open offer withdrawn, its holds released)
        kept = [(e["touchpoint"], e["at"]) for e in after["journeys"][key][: len(entries)]]
        assert kept == [(e["touchpoint"], e["at"]) for e in entries]
    async with db.connection() as conn:
        closed = await conn.fetchrow(
            "SELECT status FROM reschedule_offer WHERE id = $1", offer["id"]
        )
        holds = await conn.fetch(
            "SELECT h.status FROM reschedule_option o JOIN booking h ON h.id = o.hold_id "
            "WHERE o.offer_id = $1",
            offer["id"],
        )
        open_promises = await conn.fetchval(
            "SELECT count(*) FROM promise WHERE booking_id = $1 AND status = 'open'", booking_id
        )
        logged = await conn.fetch(
            "SELECT action, actor_type FROM catalog_audit WHERE entity = 'customer' "
            "AND entity_id = $1 ORDER BY id",
            customer_id,
        )
    assert closed["status"] == "withdrawn"
    assert holds
    assert {h["status"] for h in holds} == {"cancelled"}
    assert open_promises == 0
    assert [(r["action"], r["actor_type"]) for r in logged] == [
        ("exported", "staff"), ("erased", "staff"), ("exported", "staff"),
    ]  # fmt: skip
    stats = await manager.get(f"/v1/businesses/{world.business_id}/promises/stats")
    assert stats.status_code == 200, stats.text  # a withdrawn promise is neither
    assert stats.json()["open"] == 0
    again = await manager.post(f"{base}/erase")
    assert again.status_code == 200
    assert again.json()["counts"] == {}


async def test_retention_erases_customers_with_no_recent_booking(world: World) -> None:
    assert "apply_retention" in {job.coroutine.__name__ for job in CRON_JOBS}
    on = await world.client("manager").patch(
        f"/v1/businesses/{world.business_id}", json={"retention_months": 6}
    )
    assert on.status_code == 200, on.text
    assert on.json()["business"]["retention_months"] == 6
    long_ago = datetime.now(UTC) - timedelta(days=400)
    async with db.connection() as conn:
        ids = {}
        for name, phone, days in (("Old", "+393330000001", -300), ("Due", "+393330000002", 20)):
            customer_id = await conn.fetchval(
                "INSERT INTO customer (business_id, name, phone, created_at) "
                "VALUES ($1, $2, $3, $4) RETURNING id",
                world.business_id, name, phone, long_ago,
            )  # fmt: skip
            starts = datetime.now(UTC) + timedelta(days=days)
            await conn.execute(
                """
                INSERT INTO booking (business_id, staff_id, service_id, customer_id, status,
                    channel, reference_code, starts_at, ends_at, blocked_from, blocked_until)
                VALUES ($1, $2, $3, $4, 'confirmed', 'system', $5, $6, $7, $6, $7)
                """,
                world.business_id, world.staff[2], world.cut, customer_id, f"RET{name}",
                starts, starts + timedelta(minutes=30),
            )  # fmt: skip
            ids[name] = customer_id
        # A customer of a business without retention is never touched.
        kept = await conn.fetchval(
            "INSERT INTO customer (business_id, name, phone, created_at) "
            "VALUES ($1, 'Elsewhere', '+393330000003', $2) RETURNING id",
            world.other_business_id, long_ago,
        )  # fmt: skip
    assert await anonymise_stale_customers() == 1
    assert await anonymise_stale_customers() == 0  # idempotent
    async with db.connection() as conn:
        rows = {
            row["id"]: row
            for row in await conn.fetch("SELECT id, name, phone, erased_at FROM customer")
        }
        logged = await conn.fetchrow(
            "SELECT action, actor_type, actor_id FROM catalog_audit WHERE entity = 'customer'"
        )
    assert rows[ids["Old"]]["name"] == "Erased customer"
    assert rows[ids["Old"]]["phone"].startswith("+999")
    assert rows[ids["Due"]]["erased_at"] is None
    assert rows[ids["Due"]]["name"] == "Due"
    assert rows[kept]["erased_at"] is None
    assert tuple(logged) == ("erased", "system", "retention")
