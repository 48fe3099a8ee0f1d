"""Property-based: random seat bookings, seat moves, visits (cut then colour), single
bookings and cancellations against a model, through the real HTTP API.

After every step the database agrees with the model: each class's counter equals its
bookings' seats and never exceeds its capacity, no two active allocations of one
member of staff overlap, and every visit holds exactly its two segments."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.support import World, at

CAPACITY = 4
MAX_CHANGES = 3  # the test business allows three changes per booking (tests/support.py)
SLOTS = 8  # visits and single cuts start 09:00 .. 12:30 every 30 minutes
# Minutes each thing blocks, relative to its start: cut 30 + 10 after; a visit's cut
# on staff 0 [0, 40) then, after a 5-minute gap, its colour on staff 1 [25, 105)
# (60 minutes from 35, 10 before and after).
CUT = (0, 40)
VISIT = ((0, 0, 40), (1, 25, 105))


def _query(sql: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(os.environ["DATABASE_URL"])
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def test_random_seats_and_visits_keep_the_guarantees(world: World) -> None:
    classes = _classes(world)
    day_start = at(9, 9)

    class Model(RuleBasedStateMachine):
        seats = Bundle("seats")
        things = Bundle("things")

        def __init__(self) -> None:
            super().__init__()
            _query("UPDATE booking SET status = 'cancelled' WHERE booking_holds_time(status)")
            self.http = httpx.Client(
                base_url=world.base_url,
                headers={"Authorization": f"Bearer {world.keys['front_desk']}"},
                timeout=30,
            )
            self.phone = 0
            self.seat_model: dict[str, tuple[int, int]] = {}  # booking -> (class, seats)
            self.changes: dict[str, int] = {}  # booking -> moves made (the policy allows 3)
            self.time_model: dict[str, list[tuple[int, int, int]]] = {}  # -> (staff, lo, hi)

        def teardown(self) -> None:
            self.http.close()

        def _customer(self) -> dict[str, str]:
            self.phone += 1
            return {"name": "Model", "phone": f"+39338{self.phone:07d}"}

        def _taken(self, which: int) -> int:
            return sum(n for c, n in self.seat_model.values() if c == which)

        def _free(self, wanted: list[tuple[int, int, int]]) -> bool:
            return not any(
                s == ws and lo < whi and wlo < hi
                for held in self.time_model.values()
                for s, lo, hi in held
                for ws, wlo, whi in wanted
            )

        @rule(target=seats, which=st.integers(0, 1), party=st.integers(1, 3))
        def book_seats(self, which: int, party: int) -> str:
            response = self.http.post(
                f"/v1/businesses/{world.business_id}/sessions/{classes[which]}/bookings",
                json={"seats": party, "customer": self._customer()},
            )
            if self._taken(which) + party > CAPACITY:
                assert response.status_code == 409, response.text
                assert response.json()["type"] == "/problems/session-full"
                return ""
            assert response.status_code == 201, response.text
            self.seat_model[response.json()["id"]] = (which, party)
            return str(response.json()["id"])

        @rule(booking_id=seats, which=st.integers(0, 1), party=st.integers(1, 3))
        def move_seats(self, booking_id: str, which: int, party: int) -> None:
            if booking_id not in self.seat_model:
                return
            before = self.seat_model[booking_id]
            response = self.http.post(
                f"/v1/bookings/{booking_id}/session",
                json={"session_id": classes[which], "seats": party},
            )
            left = CAPACITY - self._taken(which) + (before[1] if before[0] == which else 0)
            if self.changes.get(booking_id, 0) >= MAX_CHANGES:
                assert response.status_code == 409, response.text
                refused = {"/problems/change-policy", "/problems/session-full"}
                assert response.json()["type"] in refused
            elif party > left:
                assert response.status_code == 409, response.text
            else:
                assert response.status_code == 200, response.text
                self.seat_model[booking_id] = (which, party)
                self.changes[booking_id] = response.json()["change_count"]

        @rule(booking_id=consumes(seats))
        def cancel_seats(self, booking_id: str) -> None:
            if booking_id not in self.seat_model:
                return
            response = self.http.post(f"/v1/bookings/{booking_id}/cancel")
            assert response.status_code == 200, response.text
            del self.seat_model[booking_id]

        @rule(target=things, slot=st.integers(0, SLOTS - 1))
        def book_visit(self, slot: int) -> str:
            start = slot * 30
            wanted = [(s, start + lo, start + hi) for s, lo, hi in VISIT]
            response = self.http.post(
                f"/v1/businesses/{world.business_id}/sequences",
                json={
                    "starts_at": (day_start + timedelta(minutes=start)).isoformat(),
                    "segments": [
                        {
                            "service_id": str(world.cut),
                            "staff_id": str(world.staff[0]),
                            "gap_after_minutes": 5,
                        },
                        {"service_id": str(world.colour), "staff_id": str(world.staff[1])},
                    ],
                    "customer": self._customer(),
                },
            )
            if not self._free(wanted):
                assert response.status_code == 409, response.text
                return ""
            assert response.status_code == 201, response.text
            self.time_model[response.json()["booking"]["id"]] = wanted
            return str(response.json()["booking"]["id"])

        @rule(target=things, staff_index=st.integers(0, 1), slot=st.integers(0, SLOTS * 2))
        def book_single(self, staff_index: int, slot: int) -> str:
            start = slot * 15
            wanted = [(staff_index, start + CUT[0], start + CUT[1])]
            response = self.http.post(
                f"/v1/businesses/{world.business_id}/bookings",
                json=world.booking_body(
                    day_start + timedelta(minutes=start),
                    staff=world.staff[staff_index],
                    phone=self._customer()["phone"],
                ),
            )
            if not self._free(wanted):
                assert response.status_code == 409, response.text
                return ""
            assert response.status_code == 201, response.text
            self.time_model[response.json()["id"]] = wanted
            return str(response.json()["id"])

        @rule(booking_id=consumes(things))
        def cancel_thing(self, booking_id: str) -> None:
            if booking_id not in self.time_model:
                return
            response = self.http.post(f"/v1/bookings/{booking_id}/cancel")
            assert response.status_code == 200, response.text
            del self.time_model[booking_id]

        @invariant()
        def database_agrees(self) -> None:
            counters = _query(
                "SELECT s.id::text AS id, s.seats_taken, s.capacity, (SELECT coalesce(sum(seats), "
                "0) FROM booking b WHERE b.session_id = s.id AND booking_holds_time(b.status)) "
                "AS counted FROM session s"
            )
            for row in counters:
                which = classes.index(row["id"])
                assert row["seats_taken"] == row["counted"] == self._taken(which)
                assert row["seats_taken"] <= row["capacity"]
            overlaps = _query(
                "SELECT count(*) AS n FROM allocation a JOIN allocation b ON "
                "a.business_id = b.business_id AND a.resource_id = b.resource_id "
                "AND a.id < b.id AND a.during && b.during WHERE a.active AND b.active"
            )
            assert overlaps[0]["n"] == 0
            active = _query(
                "SELECT b.id::text AS id, b.is_sequence, (SELECT count(*) FROM allocation a "
                "WHERE a.booking_id = b.id AND a.active) AS held FROM booking b "
                "WHERE booking_holds_time(b.status) AND b.session_id IS NULL"
            )
            assert {r["id"] for r in active} == set(self.time_model)
            for row in active:
                assert row["held"] == (2 if row["is_sequence"] else 1)

    run_state_machine_as_test(
        Model,
        settings=settings(
            max_examples=15,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )


def _classes(world: World) -> list[str]:
    """Two classes of 4 seats, taught by staff 2 in the afternoon (they meet no cut)."""
    service_id = _query(
        "INSERT INTO service (business_id, name, duration_minutes, group_capacity) "
        "VALUES ($1, 'Pilates', 60, $2) RETURNING id",
        world.business_id,
        CAPACITY,
    )[0]["id"]
    _query(
        "INSERT INTO service_staff (business_id, service_id, staff_id) VALUES ($1, $2, $3)",
        world.business_id,
        service_id,
        world.staff[2],
    )
    made = []
    with httpx.Client(
        base_url=world.base_url,
        headers={"Authorization": f"Bearer {world.keys['front_desk']}"},
        timeout=30,
    ) as http:
        for hour in (15, 16):
            response = http.post(
                f"/v1/businesses/{world.business_id}/sessions",
                json={
                    "service_id": str(service_id),
                    "starts_at": at(9, hour).isoformat(),
                    "staff_id": str(world.staff[2]),
                },
            )
            assert response.status_code == 201, response.text
            made.append(response.json()["id"])
    return made
