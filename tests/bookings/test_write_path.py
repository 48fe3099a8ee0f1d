"""The one-round-trip write path (booking_insert_first / booking_move_first) keeps
every rule the step-by-step version had: time off, reference-code retries, the
history event and an outbox payload identical to record_event's."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, timedelta
from typing import Any
from uuid import UUID

import pytest

from booking import db
from booking.access.principal import Principal
from booking.bookings import changes, placing, store
from booking.bookings.checks import CustomerInput
from booking.bookings.references import REFERENCE_ALPHABET, REFERENCE_LENGTH, new_reference_codes
from booking.errors import SlotTaken
from tests.support import World, add_cabins, at


async def _time_off(world: World, staff_index: int, day: int, start: int, end: int) -> None:
    async with db.connection() as conn:
        await conn.execute(
            "INSERT INTO time_off (business_id, staff_id, starts_at, ends_at, reason) "
            "VALUES ($1, $2, $3, $4, 'dentist')",
            world.business_id,
            world.staff[staff_index],
            at(day, start),
            at(day, end),
        )


async def _outbox(topic: str) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        rows = await conn.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topic)
    return [json.loads(row["payload"]) for row in rows]


async def test_created_booking_has_its_history_and_record_events_outbox_payload(
    world: World,
) -> None:
    desk = world.client("front_desk")
    made = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(4, 10), staff=world.staff[1]),
    )
    assert made.status_code == 201, made.text
    booking = made.json()
    moved = await desk.patch(
        f"/v1/bookings/{booking['id']}", json={"starts_at": at(4, 11).isoformat()}
    )
    assert moved.status_code == 200, moved.text
    (created,) = await _outbox("booking.created")
    (changed,) = await _outbox("booking.changed")  # written by record_event
    assert set(created) == set(changed)
    # Each row carries the id of the request that wrote it (booking.telemetry): two requests.
    created_by, changed_by = created.pop("request_id"), changed.pop("request_id")
    assert isinstance(created_by, str)
    assert created_by
    assert created_by != changed_by
    assert created == {
        "event": "booking.created",
        "booking_id": booking["id"],
        "version": 1,
        "status": "confirmed",
        "starts_at": at(4, 10).astimezone(UTC).isoformat(),
        "changes": {},
        "actor": changed["actor"],
    }
    history = (await desk.get(f"/v1/bookings/{booking['id']}/history")).json()
    first = history[0]
    assert first["event"] == "booking.created"
    assert (first["from_status"], first["to_status"]) == (None, "confirmed")
    assert (first["actor_type"], first["channel"], first["changes"]) == ("staff", "front_desk", {})
    assert first["reason"] is None
    assert first["policy_override"] is False


async def test_time_off_skips_to_the_next_member_of_staff_and_refuses_the_named_one(
    world: World,
) -> None:
    await _time_off(world, 0, 4, 9, 12)
    desk = world.client("front_desk")
    url = f"/v1/businesses/{world.business_id}/bookings"
    named = await desk.post(url, json=world.booking_body(at(4, 10), staff=world.staff[0]))
    assert named.status_code == 409, named.text
    assert named.json()["type"] == "/problems/slot-taken"
    anyone = await desk.post(url, json=world.booking_body(at(4, 10)))
    assert anyone.status_code == 201, anyone.text
    assert anyone.json()["staff_id"] != str(world.staff[0])


async def test_a_refused_booking_writes_nothing_not_even_its_customer(world: World) -> None:
    desk = world.client("front_desk")
    url = f"/v1/businesses/{world.business_id}/bookings"
    for index, _ in enumerate(world.staff):
        phone = f"+39333100000{index}"
        made = await desk.post(url, json=world.booking_body(at(4, 10), phone=phone))
        assert made.status_code == 201, made.text
    async with db.connection() as conn:
        before = await conn.fetchval("SELECT count(*) FROM customer")
    refused = await desk.post(url, json=world.booking_body(at(4, 10), phone="+393339000111"))
    assert refused.status_code == 409, refused.text
    async with db.connection() as conn:
        after = await conn.fetchval("SELECT count(*) FROM customer")
        stranger = await conn.fetchval("SELECT 1 FROM customer WHERE phone = '+393339000111'")
    assert after == before
    assert stranger is None


async def test_a_move_skips_staff_with_time_off(world: World) -> None:
    desk = world.client("front_desk")
    made = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(4, 10), staff=world.staff[0]),
    )
    assert made.status_code == 201, made.text
    await _time_off(world, 0, 4, 14, 16)
    moved = await desk.patch(
        f"/v1/bookings/{made.json()['id']}",
        json={"starts_at": at(4, 14).isoformat()},
        headers={"If-Match": '"1"'},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["staff_id"] != str(world.staff[0])
    assert moved.json()["version"] == 2


async def _book(world: World, starts: Any, staff: Any, phone: str, **extra: Any) -> dict[str, Any]:
    made = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(starts, staff=staff, phone=phone, **extra),
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def _move_counting_attempts(
    booking_id: str, change: changes.ChangeRequest
) -> tuple[dict[str, Any] | None, int]:
    """The move, in a transaction of the test's own, and how many booking rows it
    updated: PostgreSQL counts an UPDATE rolled back with its subtransaction too
    (pg_stat_xact_user_tables), so every candidate the move tried shows. The counter
    also holds this connection's earlier transactions until they are reported (at
    most once a second), hence the difference."""
    counted = "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'booking'"
    moved: dict[str, Any] | None = None
    async with db.transaction() as conn:
        before: int = await conn.fetchval(counted)
        with contextlib.suppress(SlotTaken):  # no combination free: moved stays None
            moved = await changes.change_booking(
                Principal(kind="admin", id="test"), UUID(booking_id), change
            )
        after: int = await conn.fetchval(counted)
    return moved, after - before


async def test_a_move_skips_taken_staff_without_trying_them(world: World) -> None:
    mine = await _book(world, at(4, 10), world.staff[0], "+393330000101")
    await _book(world, at(4, 14), world.staff[0], "+393330000102")
    await _book(world, at(4, 14), world.staff[1], "+393330000103")
    moved, updated = await _move_counting_attempts(
        mine["id"], changes.ChangeRequest(starts_at=at(4, 14).astimezone(UTC))
    )
    assert moved is not None
    assert moved["staff_id"] == world.staff[2]  # the one free at 14:00
    assert updated == 1  # Giulia and Marco were probed, not tried


async def test_a_small_shift_keeps_its_person_and_cabin_over_its_own_old_time(
    world: World,
) -> None:
    cabins = await add_cabins(world, 2)
    mine = await _book(world, at(4, 10), world.staff[0], "+393330000111")
    assert mine["resource_id"] == str(cabins[0])
    moved, updated = await _move_counting_attempts(
        mine["id"], changes.ChangeRequest(starts_at=at(4, 10, 15).astimezone(UTC))
    )
    assert moved is not None
    assert (moved["staff_id"], moved["resource_id"]) == (world.staff[0], cabins[0])
    assert updated == 1


async def test_a_move_skips_a_taken_cabin_and_answers_at_once_when_all_are(
    world: World,
) -> None:
    cabins = await add_cabins(world, 2)
    mine = await _book(world, at(4, 10), world.staff[0], "+393330000121")
    assert mine["resource_id"] == str(cabins[0])
    await _book(world, at(4, 14), world.staff[1], "+393330000122", resource_id=str(cabins[0]))
    moved, updated = await _move_counting_attempts(
        mine["id"], changes.ChangeRequest(starts_at=at(4, 14).astimezone(UTC))
    )
    assert moved is not None
    assert (moved["staff_id"], moved["resource_id"]) == (world.staff[0], cabins[1])
    assert updated == 1  # cabin 1 was probed taken, not tried
    await _book(world, at(4, 16), world.staff[1], "+393330000123", resource_id=str(cabins[0]))
    await _book(world, at(4, 16), world.staff[2], "+393330000124", resource_id=str(cabins[1]))
    refused, updated = await _move_counting_attempts(
        mine["id"], changes.ChangeRequest(starts_at=at(4, 16).astimezone(UTC))
    )
    assert refused is None  # both cabins taken: no combination of 3 staff x 2 cabins tried
    assert updated == 0
    async with db.connection() as conn:
        kept = await conn.fetchrow(
            "SELECT starts_at, resource_id, version FROM booking WHERE id = $1", UUID(mine["id"])
        )
    assert (kept["starts_at"], kept["resource_id"], kept["version"]) == (
        at(4, 14).astimezone(UTC),
        cabins[1],
        2,
    )


async def test_a_reference_code_clash_is_retried_with_the_next_code(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(4, 10), staff=world.staff[0]),
    )
    taken = made.json()["reference_code"]
    fresh = "ZZZZZ2" if taken != "ZZZZZ2" else "ZZZZZ3"
    monkeypatch.setattr(
        store, "new_reference_codes", lambda count: [taken, fresh] + ["ZZZZZ4"] * (count - 2)
    )
    row = await placing.create_booking(
        Principal(kind="admin", id="test"),
        world.business_id,
        world.cut,
        at(4, 10),
        CustomerInput("Bea Conti", "+393339999999"),
        staff_id=world.staff[1],
    )
    assert row["reference_code"] == fresh
    assert row["staff_id"] == world.staff[1]


def test_reference_codes_use_the_alphabet_only() -> None:
    codes = new_reference_codes(2_000)
    assert len(codes) == 2_000
    assert all(len(code) == REFERENCE_LENGTH for code in codes)
    assert set("".join(codes)) == set(REFERENCE_ALPHABET)  # every letter turns up


async def test_a_change_writes_record_events_history_and_outbox_payload(world: World) -> None:
    desk = world.client("front_desk")
    made = await desk.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(4, 10), staff=world.staff[0]),
    )
    assert made.status_code == 201, made.text
    booking = made.json()
    moved = await desk.patch(
        f"/v1/bookings/{booking['id']}",
        json={"starts_at": at(4, 15).isoformat(), "staff_id": str(world.staff[1])},
        headers={"If-Match": '"1"'},
    )
    assert moved.status_code == 200, moved.text
    old, new = at(4, 10).astimezone(UTC), at(4, 15).astimezone(UTC)
    length = timedelta(minutes=30)
    changes = {  # stored: RFC 3339 UTC times (wire_time.stored_json), ids as text
        "starts_at": {"from": old.isoformat(), "to": new.isoformat()},
        "ends_at": {"from": (old + length).isoformat(), "to": (new + length).isoformat()},
        "staff_id": {"from": str(world.staff[0]), "to": str(world.staff[1])},
    }
    shown = {  # read back: the same instants in the business's zone
        "starts_at": {"from": at(4, 10).isoformat(), "to": at(4, 15).isoformat()},
        "ends_at": {"from": at(4, 10, 30).isoformat(), "to": at(4, 15, 30).isoformat()},
        "staff_id": changes["staff_id"],
    }
    (created,) = await _outbox("booking.created")
    (changed,) = await _outbox("booking.changed")
    assert changed.pop("request_id") != created.pop("request_id")  # one per request
    assert changed == {
        "event": "booking.changed",
        "booking_id": booking["id"],
        "version": 2,
        "status": "confirmed",
        "starts_at": new.isoformat(),
        "changes": changes,
        "actor": created["actor"],
    }
    last = (await desk.get(f"/v1/bookings/{booking['id']}/history")).json()[-1]
    assert last["event"] == "booking.changed"
    assert last["changes"] == shown
    assert (last["from_status"], last["to_status"]) == ("confirmed", "confirmed")
    assert (last["actor_type"], last["channel"]) == ("staff", "front_desk")
    assert last["reason"] is None
    assert last["policy_override"] is False
