"""Property-based: random create/change/cancel sequences against a model.

Through the real HTTP API, with the database checked after every step: no two
active bookings of one member of staff ever overlap, no booking is lost, and a
change to a taken slot leaves the booking as it was.
"""

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

SLOTS = 12  # 09:00 .. 14:30 every 30 minutes
BLOCK = timedelta(minutes=40)  # the "Cut" service: 30 minutes + 10 minutes' cleanup


def _query(sql: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(os.environ["DATABASE_URL"])
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def test_random_create_change_cancel_sequences_keep_the_guarantees(world: World) -> None:
    day_start = at(9, 9)
    staff = [str(s) for s in world.staff]

    def slot_time(index: int) -> str:
        return (day_start + timedelta(minutes=30 * index)).isoformat()

    class Bookings(RuleBasedStateMachine):
        ids = Bundle("ids")

        def __init__(self) -> None:
            super().__init__()
            _query(
                "UPDATE booking SET status = 'cancelled' "
                "WHERE status IN ('held', 'pending', 'confirmed', 'checked_in')"
            )
            self.http = httpx.Client(
                base_url=world.base_url,
                headers={"Authorization": f"Bearer {world.keys['front_desk']}"},
                timeout=30,
            )
            self.model: dict[str, tuple[int, int]] = {}  # id -> (staff, slot)
            self.phone = 0

        def teardown(self) -> None:
            self.http.close()

        def _conflicts(self, staff_index: int, slot: int, ignore: str | None = None) -> bool:
            return any(
                s == staff_index and abs(slot - other) * 30 < BLOCK.total_seconds() / 60
                for booking_id, (s, other) in self.model.items()
                if booking_id != ignore
            )

        @rule(target=ids, staff_index=st.integers(0, 2), slot=st.integers(0, SLOTS - 1))
        def create(self, staff_index: int, slot: int) -> str:
            self.phone += 1
            response = self.http.post(
                f"/v1/businesses/{world.business_id}/bookings",
                json=world.booking_body(
                    day_start + timedelta(minutes=30 * slot),
                    staff=world.staff[staff_index],
                    phone=f"+39333{self.phone:07d}",
                ),
            )
            if self._conflicts(staff_index, slot):
                assert response.status_code == 409, response.text
                return ""
            assert response.status_code == 201, response.text
            booking_id: str = response.json()["id"]
            self.model[booking_id] = (staff_index, slot)
            return booking_id

        @rule(booking_id=ids, staff_index=st.integers(0, 2), slot=st.integers(0, SLOTS - 1))
        def change(self, booking_id: str, staff_index: int, slot: int) -> None:
            if booking_id not in self.model:
                return
            before = self.model[booking_id]
            response = self.http.patch(
                f"/v1/bookings/{booking_id}",
                json={
                    "starts_at": slot_time(slot),
                    "staff_id": staff[staff_index],
                    "override_reason": "property test",
                },
            )
            if self._conflicts(staff_index, slot, ignore=booking_id):
                assert response.status_code == 409, response.text
                assert response.json()["alternatives"]
                self._assert_row(booking_id, before)
            else:
                assert response.status_code == 200, response.text
                self.model[booking_id] = (staff_index, slot)

        @rule(booking_id=consumes(ids))
        def cancel(self, booking_id: str) -> None:
            if booking_id not in self.model:
                return
            response = self.http.post(f"/v1/bookings/{booking_id}/cancel")
            assert response.status_code == 200, response.text
            del self.model[booking_id]

        def _assert_row(self, booking_id: str, expected: tuple[int, int]) -> None:
            rows = _query("SELECT staff_id, starts_at FROM booking WHERE id = $1", booking_id)
            assert str(rows[0]["staff_id"]) == staff[expected[0]]
            assert rows[0]["starts_at"] == day_start + timedelta(minutes=30 * expected[1])

        @invariant()
        def database_matches_model_and_never_overlaps(self) -> None:
            rows = _query(
                "SELECT id, staff_id, starts_at, blocked_from, blocked_until FROM booking "
                "WHERE status IN ('held', 'pending', 'confirmed', 'checked_in')"
            )
            actual = {
                str(r["id"]): (
                    staff.index(str(r["staff_id"])),
                    int((r["starts_at"] - day_start).total_seconds() // 1800),
                )
                for r in rows
            }
            assert actual == self.model  # nothing lost, nothing extra
            for a in rows:
                for b in rows:
                    if a["id"] < b["id"] and a["staff_id"] == b["staff_id"]:
                        assert (
                            a["blocked_until"] <= b["blocked_from"]
                            or b["blocked_until"] <= a["blocked_from"]
                        )

    run_state_machine_as_test(
        Bookings,
        settings=settings(
            max_examples=20,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
