"""A new operator sets a business up and runs it through the API only: an admin creates
a business in New York, a manager adds staff, hours, a closed day and a service, an admin
issues a partner key, the partner sees availability, books and changes the booking."""

from __future__ import annotations

from datetime import datetime

from tests.catalog.helpers import NEW_YORK, make_shop, ny, ny_day, ok
from tests.support import World


async def test_operator_sets_up_a_business_and_a_partner_books_and_changes(world: World) -> None:
    shop = await make_shop(world)
    ann, bob = shop.staff

    # Reading the business shows every setting, as created (phone normalised to E.164).
    business = await ok(await shop.manager.get(shop.path()))
    assert business["time_zone"] == "America/New_York"
    assert business["on_duty_phone"] == "+12125550123"
    assert business["reminder_offsets_minutes"] == [1440, 60]
    assert (business["confirm_within_minutes"], business["customer_may_confirm"]) == (90, False)
    assert business["min_notice_minutes"] == 30

    # Ann does not work in three days' time.
    closed = ny_day(3)
    made = await shop.manager.put(
        shop.path(f"/staff/{ann}/exceptions/{closed.isoformat()}"),
        json={"closed": True, "note": "dentist"},
    )
    assert made.status_code == 201, made.text
    assert made.json()["exception"]["closed"] is True

    admin = world.client("admin")
    issued = await ok(
        await admin.post(
            "/v1/api-keys",
            json={
                "kind": "partner",
                "partner_name": "Marketplace NY",
                "business_ids": [shop.business_id],
                "scopes": ["availability:read", "bookings:write", "bookings:change"],
            },
        ),
        201,
    )
    partner = world.client(None, headers={"Authorization": f"Bearer {issued['key']}"})

    async def free(day_offset: int) -> list[dict[str, object]]:
        answer = await ok(
            await partner.get(
                shop.path("/availability"),
                params={
                    "service_id": shop.service_id,
                    "from": ny(day_offset, 0).isoformat(),
                    "to": ny(day_offset + 1, 0).isoformat(),
                },
            )
        )
        assert answer["time_zone"] == "America/New_York"
        slots: list[dict[str, object]] = answer["slots"]
        return slots

    # On the closed day only Bob is offered, from his opening at noon New York time.
    on_closed = await free(3)
    assert on_closed
    assert all(slot["staff_ids"] == [bob] for slot in on_closed)
    first = datetime.fromisoformat(str(on_closed[0]["starts_at"]))
    assert first == ny(3, 12)
    # A normal day: Ann from 09:00 New York time; the last start leaves the 45 minutes.
    normal = await free(4)
    assert datetime.fromisoformat(str(normal[0]["starts_at"])) == ny(4, 9)
    assert normal[0]["staff_ids"] == [ann]
    assert datetime.fromisoformat(str(normal[-1]["starts_at"])) == ny(4, 19, 15)

    # The write path honours the exception too: Ann cannot be booked on her closed day.
    refused = await partner.post(
        shop.path("/bookings"),
        json={
            "service_id": shop.service_id,
            "staff_id": ann,
            "starts_at": ny(3, 10).isoformat(),
            "customer": {"name": "Jo Smith", "phone": "+12125550199"},
        },
    )
    assert refused.status_code == 422, refused.text

    booked = await ok(
        await partner.post(
            shop.path("/bookings"),
            json={
                "service_id": shop.service_id,
                "starts_at": ny(4, 10).isoformat(),
                "customer": {"name": "Jo Smith", "phone": "+12125550199"},
            },
        ),
        201,
    )
    assert booked["staff_id"] == ann
    assert datetime.fromisoformat(booked["starts_at"]) == ny(4, 10)

    changed = await ok(
        await partner.patch(
            f"/v1/bookings/{booked['id']}",
            json={"starts_at": ny(4, 13).isoformat()},
            headers={"If-Match": f'"{booked["version"]}"'},
        )
    )
    assert datetime.fromisoformat(changed["starts_at"]).astimezone(NEW_YORK) == ny(4, 13)
    assert changed["reference_code"] == booked["reference_code"]
