"""The desk over plain HTTP (no script): search, the card, the policy override, tenants."""

from __future__ import annotations

import re
from uuid import UUID

from tests.console.helpers import csrf_of, signed_in_client
from tests.guarantee.helpers import book, execute, fetch
from tests.support import World, at, days_ahead

SLOT = re.compile(r'name="slot" value="([^"]+)"')


async def test_search_by_reference_phone_and_name(world: World) -> None:
    booking = await book(world, 3, 10, phone="+393331234567", name="Anna Ferri")
    other = await book(world, 4, 11, staff=1, phone="+393339876543", name="Paolo Rossi")
    desk = await signed_in_client(world)
    code = booking["reference_code"]
    look_alike = code.replace("Q", "O").replace("J", "I").replace("V", "U").lower()
    for typed in (code, f" {code[:3]} {code[3:]} ".lower(), look_alike):
        page = await desk.get("/desk/search", params={"q": typed})
        assert page.status_code == 200
        assert f"/desk/bookings/{booking['id']}" in page.text, typed
        assert 'id="card"' in page.text  # an exact reference brings its card
    for typed in ("333 123 4567", "+39 333-123-4567", "0039 3331234567", "1234567"):
        page = await desk.get("/desk/search", params={"q": typed})
        assert f"/desk/bookings/{booking['id']}" in page.text, typed
        assert f"/desk/bookings/{other['id']}" not in page.text, typed
    for typed in ("ferri", "Anna F", "NNA"):
        page = await desk.get("/desk/search", params={"q": typed})
        assert f"/desk/bookings/{booking['id']}" in page.text, typed
        assert f"/desk/bookings/{other['id']}" not in page.text, typed
    # Names from the third character on; one or two characters find no names.
    for typed in ("an", "An", "fe"):
        page = await desk.get("/desk/search", params={"q": typed})
        assert page.status_code == 200
        assert f"/desk/bookings/{booking['id']}" not in page.text, typed
    assert f"/desk/bookings/{booking['id']}" in (
        await desk.get("/desk/search", params={"q": "ann"})
    ).text
    nothing = await desk.get("/desk/search", params={"q": "zzzz"})
    assert 'id="no-results"' in nothing.text
    # Without script: the same search is a plain GET form.
    plain = await desk.get("/desk", params={"q": "rossi"})
    assert f"/desk/bookings/{other['id']}" in plain.text


async def test_another_business_booking_is_not_findable(world: World) -> None:
    await execute(
        "INSERT INTO working_hours (business_id, staff_id, weekday, opens_at, closes_at) "
        "SELECT business_id, id, d, '09:00', '18:00' FROM staff, generate_series(0, 6) d "
        "WHERE business_id = $1",
        world.other_business_id,
    )
    services = await fetch("SELECT id FROM service WHERE business_id = $1", world.other_business_id)
    async with world.client("admin") as admin:
        made = await admin.post(
            f"/v1/businesses/{world.other_business_id}/bookings",
            json={
                "service_id": str(services[0]["id"]),
                "starts_at": at(3, 10).isoformat(),
                "customer": {"name": "Anna Ferri", "phone": "+393331234567"},
            },
        )
    assert made.status_code == 201, made.text
    theirs = made.json()
    desk = await signed_in_client(world)
    for typed in (theirs["reference_code"], "Anna Ferri", "3331234567"):
        page = await desk.get("/desk/search", params={"q": typed})
        assert theirs["id"] not in page.text
    card = await desk.get(f"/desk/bookings/{theirs['id']}")
    assert card.status_code == 404
    assert theirs["reference_code"] not in card.text


async def test_a_move_past_the_policy_needs_a_recorded_reason(world: World) -> None:
    booking = await book(world, 3, 16)
    await execute("UPDATE booking SET change_count = 3 WHERE id = $1", UUID(booking["id"]))
    desk = await signed_in_client(world, role="manager", label="Manager desk")
    card = await desk.get(f"/desk/bookings/{booking['id']}")
    assert 'id="needs-override"' in card.text
    assert "Changes: 3 of 3." in card.text or "Modifiche: 3 su 3." in card.text
    slot = SLOT.search(card.text)
    assert slot is not None
    form = {"csrf": csrf_of(card.text), "version": str(booking["version"]), "slot": slot.group(1)}
    refused = await desk.post(f"/desk/bookings/{booking['id']}/move", data=form)
    assert refused.status_code == 409
    moved = await desk.post(
        f"/desk/bookings/{booking['id']}/move",
        data=form | {"override_reason": "train left early; manager agreed"},
    )
    assert moved.status_code == 303
    history = await fetch(
        "SELECT reason, policy_override FROM booking_history WHERE booking_id = $1 "
        "AND event = 'booking.changed'",
        UUID(booking["id"]),
    )
    assert history == [{"reason": "train left early; manager agreed", "policy_override": True}]


async def test_other_days_and_staff_are_one_step_away(world: World) -> None:
    booking = await book(world, 3, 16)
    desk = await signed_in_client(world)
    day = at(5, 9).date().isoformat()
    page = await desk.get(
        f"/desk/bookings/{booking['id']}", params={"day": day, "staff": str(world.staff[1])}
    )
    assert page.status_code == 200
    slots = SLOT.findall(page.text)
    assert slots
    assert all(s.endswith(f"|{world.staff[1]}") for s in slots)
    assert all(s.startswith(day) or s[:10] <= day for s in slots)  # UTC of that Rome day


async def test_a_stale_form_is_answered_with_the_new_state(world: World) -> None:
    booking = await book(world, 3, 16)
    desk = await signed_in_client(world)
    card = await desk.get(f"/desk/bookings/{booking['id']}")
    slots = SLOT.findall(card.text)
    form = {"csrf": csrf_of(card.text), "version": str(booking["version"])}
    first = await desk.post(f"/desk/bookings/{booking['id']}/move", data=form | {"slot": slots[0]})
    assert first.status_code == 303
    second = await desk.post(
        f"/desk/bookings/{booking['id']}/move", data=form | {"slot": slots[1]}
    )
    assert second.status_code == 409
    assert 'id="error"' in second.text
    assert f'name="version" value="{booking["version"] + 1}"' in second.text


async def test_the_day_opens_one_form_at_a_time_without_script(world: World) -> None:
    """The day carries one shared form for every booking's buttons and no walk-in or cancel
    form until one is asked for (issue 15: ~650 KB with a form per gap and per booking)."""
    booking = await book(world, 3, 10)
    desk = await signed_in_client(world)
    day = at(3, 9).date().isoformat()
    page = await desk.get("/desk/day", params={"date": day})
    assert page.status_code == 200
    assert page.text.count("<form") == 3  # sign-out, pick a day, the shared actions form
    gaps = re.findall(r'href="/desk/day\?date=[0-9-]+&amp;walk_in=([^"]+)"', page.text)
    assert gaps
    assert f"&amp;cancel={booking['id']}" in page.text
    # The link opens the day with that gap's form (the fragment route serves it alone).
    opened = await desk.get("/desk/day", params={"date": day, "walk_in": gaps[0]})
    assert opened.text.count('class="walk-in"') == 1
    alone = await desk.get("/desk/day/form", params={"date": day, "walk_in": gaps[0]})
    assert alone.status_code == 200
    assert alone.text.count("<form") == 1
    assert 'name="csrf"' in alone.text
    gone = await desk.get("/desk/day/form", params={"date": day, "walk_in": "x"})
    assert gone.status_code == 404
    cancel = await desk.get("/desk/day/form", params={"date": day, "cancel": booking["id"]})
    assert 'name="reason"' in cancel.text
    assert f'name="version" value="{booking["version"]}"' in cancel.text

    # A refused walk-in keeps its form open with what was typed.
    form = {
        "csrf": csrf_of(page.text),
        "staff_id": str(world.staff[1]),
        "date": day,
        "gap": gaps[0],
        "time": "25:00",
        "service_id": str(world.cut),
        "name": "Walk In",
        "phone": "333 765 4321",
    }
    refused = await desk.post("/desk/walk-in", data=form)
    assert refused.status_code == 422
    assert 'value="Walk In"' in refused.text

    # A booking's button: the shared form, the version in the button's formaction. (Check-in
    # opens on the day: test setup moves the booking to a few minutes ago, today.)
    await execute(
        "UPDATE booking SET starts_at = now() - interval '5 minutes', ends_at = now() + "
        "interval '25 minutes', blocked_from = now() - interval '5 minutes', blocked_until = "
        "now() + interval '35 minutes' WHERE id = $1",
        UUID(booking["id"]),
    )
    day = days_ahead(0).isoformat()
    page = await desk.get("/desk/day", params={"date": day})
    action = re.search(
        rf'formaction="(/desk/bookings/{booking["id"]}/status\?version=\d+)" name="action" '
        r'value="no_show"',
        page.text,
    )
    assert action is not None
    shared = {"csrf": csrf_of(page.text), "back": f"/desk/day?date={day}"}
    stale = action.group(1).replace(f"version={booking['version']}", "version=99")
    assert (await desk.post(stale, data=shared | {"action": "check_in"})).status_code == 409
    done = await desk.post(action.group(1), data=shared | {"action": "check_in"})
    assert done.status_code == 303
    assert done.headers["location"] == f"/desk/day?date={day}&done=check_in"
    assert (await desk.post(action.group(1), data={"action": "check_in"})).status_code == 403
