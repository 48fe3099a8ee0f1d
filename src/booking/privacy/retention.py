"""The retention setting: a business that keeps customers for N months has every
customer with no booking in the last N months anonymised (the worker's daily job).

``business.retention_months`` NULL (the default) keeps customers until a manager
erases one. A customer counts as stale when created more than N months ago and none
of their bookings starts within the last N months (a future booking keeps them).
Each customer is erased in its own transaction exactly as a manager's request would
(:func:`booking.privacy.service.erase`), logged with the actor ``system:retention``.
"""

from __future__ import annotations

from booking import db
from booking.access.principal import Principal
from booking.privacy.service import erase

RETENTION = Principal(kind="system", id="retention")
BATCH = 200

_STALE_WHERE = """
    b.retention_months IS NOT NULL AND c.erased_at IS NULL
    AND c.created_at < now() - make_interval(months => b.retention_months)
    AND NOT EXISTS (
        SELECT 1 FROM booking k WHERE k.business_id = c.business_id AND k.customer_id = c.id
          AND k.starts_at >= now() - make_interval(months => b.retention_months))
"""
_FROM = "FROM customer c JOIN business b ON b.id = c.business_id"


async def anonymise_stale_customers(batch: int = BATCH) -> int:
    """Erase up to ``batch`` stale customers; the number erased. Safe to run twice:
    an erased customer is never picked again, one booked meanwhile is skipped."""
    async with db.connection() as conn:
        stale = await conn.fetch(
            f"SELECT c.business_id, c.id {_FROM} WHERE {_STALE_WHERE} "
            "ORDER BY c.business_id, c.created_at, c.id LIMIT $1",
            batch,
        )
    erased = 0
    for row in stale:
        async with db.transaction() as conn:
            # Under the row lock, still stale? (a booking made meanwhile keeps them)
            customer = await conn.fetchrow(
                f"SELECT c.id, c.business_id, c.phone {_FROM} "
                f"WHERE c.business_id = $1 AND c.id = $2 AND {_STALE_WHERE} FOR UPDATE OF c",
                row["business_id"],
                row["id"],
            )
            if customer is None:
                continue
            await erase(conn, RETENTION, customer)
            erased += 1
    return erased
