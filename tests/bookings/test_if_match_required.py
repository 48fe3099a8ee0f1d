"""A business can make If-Match mandatory for its staff's changes of bookings: without
it the change is refused with 428 and nothing changes; customers are not bound by it."""

from __future__ import annotations

from booking import db
from tests.support import World, at


async def test_a_business_that_requires_if_match_refuses_staff_changes_without_it(
    world: World,
) -> None:
    desk = world.client("front_desk")
    made = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(3, 10), staff=world.staff[0]),
    )
    assert made.status_code == 201, made.text
    booking = made.json()
    path = f"/v1/bookings/{booking['id']}"
    move = {"starts_at": at(3, 11).isoformat()}
    # Off by default: a change without If-Match goes through.
    assert (await world.client("manager").get(f"/v1/businesses/{world.business_id}")).json()[
        "require_if_match"
    ] is False
    free = await desk.patch(path, json=move)
    assert free.status_code == 200, free.text

    # The manager turns it on through the catalog API (audited like any setting).
    on = await world.client("manager").patch(
        f"/v1/businesses/{world.business_id}", json={"require_if_match": True}
    )
    assert on.status_code == 200, on.text
    assert on.json()["business"]["require_if_match"] is True

    refused = await desk.patch(path, json={"starts_at": at(3, 12).isoformat()})
    assert refused.status_code == 428, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"] == "/problems/precondition-required"
    cancel = await desk.post(f"{path}/cancel")
    assert cancel.status_code == 428, cancel.text
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT version, status, starts_at FROM booking WHERE id = $1", booking["id"]
        )
    assert (row["version"], row["status"], row["starts_at"]) == (2, "confirmed", at(3, 11))

    # With the ETag read, the same change goes through; a stale one is still 412.
    etag = (await desk.get(path)).headers["ETag"]
    stale = await desk.patch(path, json={"starts_at": at(3, 12).isoformat()},
                             headers={"If-Match": '"1"'})  # fmt: skip
    assert stale.status_code == 412
    done = await desk.patch(
        path, json={"starts_at": at(3, 12).isoformat()}, headers={"If-Match": etag}
    )
    assert done.status_code == 200, done.text

    # The customer's own link is not bound by the business's rule for its staff.
    customer = world.client(None, headers={"Authorization": f"Bearer {booking['manage_token']}"})
    mine = await customer.get(path)
    assert mine.status_code == 200, mine.text
    cancelled = await customer.post(f"{path}/cancel")
    assert cancelled.status_code == 200, cancelled.text

    async with db.connection() as conn:
        audit = await conn.fetchval(
            "SELECT changes FROM catalog_audit WHERE entity = 'business' AND action = 'changed'"
        )
    assert "require_if_match" in audit
