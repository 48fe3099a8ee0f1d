"""A customer's personal data on request (GDPR): everything held about them as one JSON
document, and erasure that anonymises them while the business keeps its records.

What is personal here: the customer's name and phone, the text of the SMS we sent them
and they sent us (bodies and phone numbers), free-text booking notes, the phone a
promise was made to. What stays: every booking's times, status, service, staff and
resource, the history (who did what when), the counts (bookings, messages, offers,
promises), so the business's figures and audit trail do not change.

Erasure runs in one transaction, under the customer's row lock:

* an open reschedule offer is withdrawn and its holds released (the guarantee's own
  ``withdraw_open_offer``), open promises are closed as ``withdrawn`` (neither kept
  nor broken: the watchdog and the kept rate leave them alone), an open waitlist
  entry is cancelled, scheduled reminders and pending SMS are skipped: nothing will
  text a number that is no longer theirs;
* the customer becomes ``Erased customer`` with a placeholder phone in the reserved
  ``+999`` range (unique per customer, never a subscriber), no SMS consent, and
  ``erased_at``; message and inbound-SMS bodies become empty and their numbers the
  placeholder; booking notes and feedback comments empty (scores kept for the counts);
* one ``catalog_audit`` row (entity ``customer``, action ``erased``) with the actor and
  the counts, never the erased values. An export is logged the same way (``exported``).

Both are for the business's managers (and admins). Another tenant's customer answers
404 like a missing one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import msgspec

from booking import db
from booking.access.principal import Principal
from booking.catalog import audit
from booking.customers import normalize_phone
from booking.errors import NotFound
from booking.guarantee.offers import withdraw_open_offer
from booking.journey.timeline import JOURNEY_SQL, entry_of

ERASED_NAME = "Erased customer"
ERASED_WHY = "customer data erased"
_CUSTOMER_COLUMNS = "id, business_id, name, phone, locale, sms_consent, created_at, erased_at"


def placeholder_phone(customer_id: UUID) -> str:
    """``+999`` and 11 digits from the id: E.164-shaped (the column's check), unique
    per customer in practice, and in a range no subscriber has (ITU reserves +999)."""
    return f"+999{customer_id.int % 10**11:011d}"


def _plain(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return None  # hashes (a hold token's) are not data about the customer
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _rows(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [_plain(dict(row)) for row in rows]


async def _customer(
    conn: asyncpg.Connection, business_id: UUID, customer_id: UUID, *, lock: bool
) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"SELECT {_CUSTOMER_COLUMNS} FROM customer WHERE business_id = $1 AND id = $2"
        + (" FOR UPDATE" if lock else ""),
        business_id,
        customer_id,
    )
    if row is None:
        raise NotFound("No such customer at this business.")
    return row


async def find_customers(
    principal: Principal, business_id: UUID, phone: str | None
) -> list[dict[str, Any]]:
    """The business's customers with this phone (or the 100 newest): to find an id."""
    principal.require_manager(business_id)
    if phone is not None:
        phone = normalize_phone(phone)
    async with db.connection() as conn:
        rows = await conn.fetch(
            f"SELECT {_CUSTOMER_COLUMNS} FROM customer WHERE business_id = $1 "
            "AND ($2::text IS NULL OR phone = $2) ORDER BY created_at DESC, id LIMIT 100",
            business_id,
            phone,
        )
    return [dict(row) for row in rows]


async def _document(conn: asyncpg.Connection, customer: asyncpg.Record) -> dict[str, Any]:
    business_id, customer_id, phone = customer["business_id"], customer["id"], customer["phone"]
    bookings = await conn.fetch(
        "SELECT * FROM booking WHERE business_id = $1 AND customer_id = $2 ORDER BY starts_at, id",
        business_id,
        customer_id,
    )
    ids = [row["id"] for row in bookings]

    async def of_bookings(sql: str) -> list[dict[str, Any]]:
        return _rows(await conn.fetch(sql, business_id, ids))

    history = await of_bookings(
        "SELECT * FROM booking_history WHERE business_id = $1 AND booking_id = ANY($2) "
        "ORDER BY occurred_at, id"
    )
    offers = await of_bookings(
        "SELECT * FROM reschedule_offer WHERE business_id = $1 AND booking_id = ANY($2) "
        "ORDER BY created_at, id"
    )
    options = _rows(
        await conn.fetch(
            "SELECT * FROM reschedule_option WHERE business_id = $1 AND offer_id = ANY($2) "
            "ORDER BY offer_id, position",
            business_id,
            [UUID(offer["id"]) for offer in offers],
        )
    )
    for offer in offers:
        offer["options"] = [o for o in options if o["offer_id"] == offer["id"]]
    sections: dict[str, Any] = {
        "customer": _plain(dict(customer)),
        "consents": {"sms": customer["sms_consent"]},
        "bookings": [
            _plain(dict(row))
            | {"history": [h for h in history if h["booking_id"] == str(row["id"])]}
            for row in bookings
        ],
        "offers": offers,
        "waitlist": await of_bookings(
            "SELECT * FROM waitlist_entry WHERE business_id = $1 AND booking_id = ANY($2) "
            "ORDER BY created_at, id"
        ),
        "reminders": await of_bookings(
            "SELECT * FROM reminder WHERE business_id = $1 AND booking_id = ANY($2) "
            "ORDER BY due_at, id"
        ),
        "promises": _rows(
            await conn.fetch(
                "SELECT * FROM promise WHERE business_id = $1 "
                "AND (booking_id = ANY($2) OR customer_phone = $3) ORDER BY made_at, id",
                business_id,
                ids,
                phone,
            )
        ),
        "messages": _rows(
            await conn.fetch(
                "SELECT id, booking_id, template, locale, to_phone, body, status, provider, "
                "provider_status, error_code, created_at, sent_at, delivered_at FROM message "
                "WHERE business_id = $1 AND (customer_id = $3 OR booking_id = ANY($2)) "
                "ORDER BY created_at, id",
                business_id,
                ids,
                customer_id,
            )
        ),
        "messages_received": _rows(
            await conn.fetch(
                "SELECT id, booking_id, from_phone, body, keyword, outcome, received_at "
                "FROM inbound_message WHERE booking_id = ANY($1) OR from_phone = $2 "
                "ORDER BY received_at, id",
                ids,
                phone,
            )
        ),
        "feedback": await of_bookings(
            "SELECT booking_id, status, ask_at, asked_at, not_asked_reason, score, comment, "
            "channel, received_at, called_back_at FROM feedback "
            "WHERE business_id = $1 AND booking_id = ANY($2) ORDER BY ask_at, id"
        ),
        "journeys": await _journeys(conn, business_id, ids),
    }
    return sections


async def _journeys(
    conn: asyncpg.Connection, business_id: UUID, ids: list[UUID]
) -> dict[str, list[dict[str, Any]]]:
    """Each booking's journey as the business sees it (the same source as the API)."""
    zone = await conn.fetchval("SELECT time_zone FROM business WHERE id = $1", business_id)
    tz = ZoneInfo(zone)
    journeys: dict[str, list[dict[str, Any]]] = {}
    for booking_id in ids:
        rows = await conn.fetch(JOURNEY_SQL, booking_id)
        journeys[str(booking_id)] = [
            msgspec.to_builtins(entry_of(row, "business", tz)) for row in rows
        ]
    return journeys


async def export_customer(
    principal: Principal, business_id: UUID, customer_id: UUID
) -> dict[str, Any]:
    """Everything held about the customer, as JSON-ready values; the export is logged."""
    principal.require_manager(business_id)
    async with db.transaction() as conn:
        customer = await _customer(conn, business_id, customer_id, lock=False)
        document = await _document(conn, customer)
        await audit.record(
            conn, principal, business_id, "customer", customer_id, "exported",
            {"bookings": len(document["bookings"]), "messages": len(document["messages"])},
        )  # fmt: skip
    return {"exported_at": datetime.now(UTC), **document}


async def erase(
    conn: asyncpg.Connection, principal: Principal, customer: asyncpg.Record
) -> dict[str, Any]:
    """Anonymise one locked customer (see the module docstring); the counts touched."""
    business_id, customer_id, phone = customer["business_id"], customer["id"], customer["phone"]
    ghost = placeholder_phone(customer_id)
    ids = [
        row["id"]
        for row in await conn.fetch(
            "SELECT id FROM booking WHERE business_id = $1 AND customer_id = $2 FOR UPDATE",
            business_id,
            customer_id,
        )
    ]
    open_offers = await conn.fetch(
        "SELECT booking_id FROM reschedule_offer WHERE business_id = $1 "
        "AND booking_id = ANY($2) AND status = 'open'",
        business_id,
        ids,
    )
    for offer in open_offers:
        await withdraw_open_offer(conn, offer["booking_id"], ERASED_WHY)
    counts: dict[str, Any] = {"bookings": len(ids), "offers_withdrawn": len(open_offers)}
    steps: dict[str, tuple[str, tuple[Any, ...]]] = {
        "promises_closed": (
            "UPDATE promise SET status = 'withdrawn', resolved_at = now() WHERE business_id = $1 "
            "AND (booking_id = ANY($2) OR customer_phone = $3) AND status = 'open'",
            (business_id, ids, phone),
        ),
        "promises": (
            "UPDATE promise SET customer_phone = $4 WHERE business_id = $1 "
            "AND (booking_id = ANY($2) OR customer_phone = $3)",
            (business_id, ids, phone, ghost),
        ),
        "waitlist_cancelled": (
            "UPDATE waitlist_entry SET status = 'cancelled', closed_at = now() "
            "WHERE business_id = $1 AND booking_id = ANY($2) AND status = 'waiting'",
            (business_id, ids),
        ),
        "reminders_skipped": (
            "UPDATE reminder SET status = 'skipped', processed_at = now() "
            "WHERE business_id = $1 AND booking_id = ANY($2) AND status = 'scheduled'",
            (business_id, ids),
        ),
        "messages_skipped": (
            "UPDATE message SET status = 'skipped', error_message = $3 WHERE business_id = $1 "
            "AND (customer_id = $2 OR booking_id = ANY($4)) AND status = 'pending'",
            (business_id, customer_id, ERASED_WHY, ids),
        ),
        "messages": (
            "UPDATE message SET body = '', to_phone = $4 WHERE business_id = $1 "
            "AND (customer_id = $3 OR booking_id = ANY($2))",
            (business_id, ids, customer_id, ghost),
        ),
        "messages_received": (
            "UPDATE inbound_message SET body = '', from_phone = $3 "
            "WHERE booking_id = ANY($1) OR from_phone = $2",
            (ids, phone, ghost),
        ),
        "feedback_comments": (
            "UPDATE feedback SET comment = '' WHERE business_id = $1 AND booking_id = ANY($2) "
            "AND comment <> ''",
            (business_id, ids),
        ),
        "booking_notes": (
            "UPDATE booking SET notes = '' WHERE business_id = $1 AND id = ANY($2) AND notes <> ''",
            (business_id, ids),
        ),
    }
    for name, (sql, args) in steps.items():
        result = await conn.execute(sql, *args)
        counts[name] = int(result.rsplit(" ", 1)[-1])
    await conn.execute(
        "UPDATE customer SET name = $3, phone = $4, sms_consent = false, erased_at = now() "
        "WHERE business_id = $1 AND id = $2",
        business_id,
        customer_id,
        ERASED_NAME,
        ghost,
    )
    await audit.record(conn, principal, business_id, "customer", customer_id, "erased", counts)
    return counts


async def erase_customer(
    principal: Principal, business_id: UUID, customer_id: UUID
) -> dict[str, Any]:
    """Erase on a manager's request; erasing twice is harmless (nothing left to erase)."""
    principal.require_manager(business_id)
    async with db.transaction() as conn:
        customer = await _customer(conn, business_id, customer_id, lock=True)
        if customer["erased_at"] is not None:
            return {"customer_id": customer_id, "erased_at": customer["erased_at"], "counts": {}}
        counts = await erase(conn, principal, customer)
        erased_at = await conn.fetchval(
            "SELECT erased_at FROM customer WHERE business_id = $1 AND id = $2",
            business_id,
            customer_id,
        )
    return {"customer_id": customer_id, "erased_at": erased_at, "counts": counts}
