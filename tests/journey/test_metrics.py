"""Journey metrics on a seeded, known data set: every figure equals the value computed by
hand below (the comments say which rows make it), and other tenants read nothing."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from booking import db
from booking.journey import summary
from tests.support import World, days_ahead, rome

# Three past days in Rome; bookings are placed on them at distinct hours.
D1, D2, D3 = days_ahead(-10), days_ahead(-9), days_ahead(-8)


class Seed:
    def __init__(self, world: World, conn: Any) -> None:
        self.world = world
        self.conn = conn
        self.n = 0

    async def booking(
        self,
        day: date,
        hour: int,
        *,
        channel: str,
        status: str,
        staff: int = 0,
        change_count: int = 0,
        created_before: timedelta = timedelta(days=2),
    ) -> tuple[UUID, datetime, UUID]:
        self.n += 1
        customer = await self.conn.fetchval(
            "INSERT INTO customer (business_id, name, phone, locale) "
            "VALUES ($1, $2, $3, 'it') RETURNING id",
            self.world.business_id,
            f"Cliente {self.n}",
            f"+3933300{self.n:05d}",
        )
        starts = rome(day, hour)
        booking_id = await self.conn.fetchval(
            """
            INSERT INTO booking (business_id, staff_id, service_id, customer_id, status,
                channel, reference_code, starts_at, ends_at, blocked_from, blocked_until,
                change_count, hold_expires_at, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::timestamptz,
                    $8::timestamptz + interval '30 minutes', $8::timestamptz,
                    $8::timestamptz + interval '40 minutes', $9,
                    CASE WHEN $5 = 'held' THEN now() + interval '1 hour' END, $10)
            RETURNING id
            """,
            self.world.business_id,
            self.world.staff[staff],
            self.world.cut,
            customer,
            status,
            channel,
            f"SEED{self.n:02d}",
            starts,
            change_count,
            starts - created_before,
        )
        return booking_id, starts, customer

    async def history(
        self, booking_id: UUID, event: str, at: datetime, actor: str, **extra: Any
    ) -> None:
        await self.conn.execute(
            "INSERT INTO booking_history (booking_id, business_id, occurred_at, event, "
            "from_status, to_status, actor_type, actor_id, channel) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, 'seed', 'web')",
            booking_id,
            self.world.business_id,
            at,
            event,
            extra.get("from_status"),
            extra.get("to_status"),
            actor,
        )

    async def sms(
        self,
        booking_id: UUID,
        customer: UUID,
        template: str,
        at: datetime,
        status: str = "delivered",
    ) -> None:
        self.n += 1
        await self.conn.execute(
            """
            INSERT INTO message (business_id, booking_id, customer_id, dedupe_key, template,
                locale, to_phone, body, status, created_at, sent_at, delivered_at)
            VALUES ($1, $2, $3, $4, $5, 'it', '+393330000000', 'x', $6,
                    $7::timestamptz, $7::timestamptz,
                    CASE WHEN $6 = 'delivered' THEN $7::timestamptz + interval '1 minute' END)
            """,
            self.world.business_id,
            booking_id,
            customer,
            f"seed:{self.n}",
            template,
            status,
            at,
        )

    async def offer(
        self, booking_id: UUID, status: str, created: datetime, decided: datetime
    ) -> None:
        await self.conn.execute(
            "INSERT INTO reschedule_offer (business_id, booking_id, kind, status, expires_at, "
            "created_at, decided_at) "
            "VALUES ($1, $2, 'lost_slot', $3, $4::timestamptz, "
            "$4::timestamptz - interval '2 hours', $5)",
            self.world.business_id,
            booking_id,
            status,
            created,
            decided,
        )

    async def feedback(self, booking_id: UUID, score: int, at: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO feedback (business_id, booking_id, status, ask_at, asked_at, score, "
            "channel, received_at) VALUES ($1, $2, 'received', $3::timestamptz, $3::timestamptz, "
            "$4, 'sms', $3::timestamptz + interval '10 minutes')",
            self.world.business_id,
            booking_id,
            at,
            score,
        )

    async def promise(self, booking_id: UUID, kind: str, status: str, due: datetime) -> None:
        self.n += 1
        await self.conn.execute(
            "INSERT INTO promise (business_id, booking_id, kind, subject, made_at, nudge_at, "
            "due_at, status) "
            "VALUES ($1, $2, $3, $4, $5::timestamptz - interval '1 hour', $5, $5, $6)",
            self.world.business_id,
            booking_id,
            kind,
            f"seed:{self.n}",
            due,
            status,
        )


async def _seed(world: World) -> None:
    async with db.transaction() as conn:
        s = Seed(world, conn)
        # D1: b1 web completed, reminder delivered, score 5
        b1, t1, c1 = await s.booking(D1, 10, channel="web", status="completed")
        await s.sms(b1, c1, "reminder", t1 - timedelta(days=1))
        await s.feedback(b1, 5, t1 + timedelta(hours=2))
        # b2 partner no-show, reminder delivered
        b2, t2, c2 = await s.booking(D1, 11, channel="partner", status="no_show")
        await s.sms(b2, c2, "reminder", t2 - timedelta(days=1))
        # b3 front desk: changed by the customer, then lost its slot, the offer SMS went
        # out, the offer expired and the customer cancelled.
        b3, t3, c3 = await s.booking(
            D1, 12, channel="front_desk", status="cancelled", change_count=1
        )
        await s.history(b3, "booking.changed", t3 - timedelta(days=1, hours=5), "customer")
        await s.offer(b3, "expired", t3 - timedelta(hours=20), t3 - timedelta(hours=20))
        await s.sms(b3, c3, "offer_lost_slot", t3 - timedelta(hours=22))
        await s.history(b3, "booking.cancelled", t3 - timedelta(hours=19), "customer")
        # D2: b4 web completed, changed at the desk, reminder sent (never delivered), score 2
        b4, t4, c4 = await s.booking(D2, 10, channel="web", status="completed", change_count=1)
        await s.sms(b4, c4, "reminder", t4 - timedelta(days=1), status="sent")
        await s.history(b4, "booking.changed", t4 - timedelta(hours=3), "staff")
        await s.feedback(b4, 2, t4 + timedelta(hours=2))
        await s.promise(b4, "callback", "kept", t4 + timedelta(days=1))
        # b5 partner no-show, no reminder
        await s.booking(D2, 11, channel="partner", status="no_show")
        # b6 web completed on Marco: pending 30 min, lost slot recovered, score 4
        b6, t6, _ = await s.booking(D2, 12, channel="web", status="completed", staff=1)
        created6 = t6 - timedelta(days=2)
        await s.history(
            b6,
            "booking.confirmed",
            created6 + timedelta(minutes=30),
            "staff",
            from_status="pending",
            to_status="confirmed",
        )
        await s.promise(b6, "confirmation", "kept", t6 - timedelta(hours=3))
        await s.offer(b6, "accepted", t6 - timedelta(hours=30), t6 - timedelta(hours=29))
        await s.feedback(b6, 4, t6 + timedelta(hours=2))
        # D3: b7 web completed, pending 90 min (promise broken), changed by a partner
        b7, t7, _ = await s.booking(D3, 10, channel="web", status="completed", change_count=1)
        created7 = t7 - timedelta(days=2)
        await s.history(
            b7,
            "booking.confirmed",
            created7 + timedelta(minutes=90),
            "staff",
            from_status="pending",
            to_status="confirmed",
        )
        await s.history(b7, "booking.changed", t7 - timedelta(hours=5), "partner")
        await s.promise(b7, "confirmation", "broken", created7 + timedelta(hours=1))
        # Not counted: a hold, a booking the day after, an open promise.
        await s.booking(D3, 14, channel="web", status="held")
        b9, t9, _ = await s.booking(days_ahead(-7), 10, channel="web", status="completed")
        await s.feedback(b9, 1, t9 + timedelta(hours=1))
        await s.promise(b9, "reply", "open", t9)


async def test_metrics_equal_the_hand_computed_values(world: World) -> None:
    await _seed(world)

    answer = await world.client("manager").get(
        f"/v1/businesses/{world.business_id}/journey/metrics",
        params={"from": D1.isoformat(), "to": D3.isoformat()},
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["time_zone"] == "Europe/Rome"
    assert set(body["counts"]) >= {"bookings", "no_show", "moments_of_truth"}
    t = body["totals"]
    # b1..b7 (the hold and the day after are outside)
    assert t["bookings"] == 7
    assert t["bookings_by_channel"] == {"front_desk": 1, "partner": 2, "web": 4}
    # b3, b4, b7 changed: 3 / 7; by the customer (b3), the desk (b4), a partner (b7)
    assert (t["changed"], t["changed_share"]) == (3, 0.4286)
    assert t["changed_by"] == {"customer": 1, "front_desk": 1, "partner": 1}
    # b6 waited 30 min, b7 90 min: p50 = 60, p90 = 30 + 0.9 * 60 = 84
    assert t["confirmation_minutes"] == {"count": 2, "p50": 60.0, "p90": 84.0}
    # lost: b3 (expired), b6 (accepted before the appointment)
    assert (t["lost_slots"], t["lost_slots_recovered"]) == (2, 1)
    # reminders sent to b1, b2, b4; delivered to b1, b2
    assert (t["reminders_sent"], t["reminders_delivered"]) == (3, 2)
    # attended or missed: b1 b2 b4 b5 b6 b7 = 6, no-shows b2 b5 = 2
    assert (t["attended_or_missed"], t["no_shows"], t["no_show_rate"]) == (6, 2, 0.3333)
    # reminder delivered: b1, b2 -> 1 no-show of 2; without: b4 b5 b6 b7 -> 1 of 4
    assert t["no_show_rate_reminder_delivered"] == 0.5
    assert t["no_show_rate_no_reminder_delivered"] == 0.25
    # scores 5 (b1), 2 (b4), 4 (b6)
    assert (t["feedback_count"], t["feedback_mean"]) == (3, 3.67)
    assert t["feedback_by"]["service"] == [{"name": "Cut", "count": 3, "mean": 3.67}]
    assert t["feedback_by"]["staff"] == [
        {"name": "Giulia", "count": 2, "mean": 3.5},
        {"name": "Marco", "count": 1, "mean": 4.0},
    ]
    assert t["feedback_by"]["channel"] == [{"name": "web", "count": 3, "mean": 3.67}]
    # due in the period and settled: kept b4 callback, b6 confirmation; broken b7
    assert t["promises"]["kept"] == 2
    assert t["promises"]["broken"] == 1
    assert t["promises"]["kept_rate"] == 0.6667
    assert t["promises"]["by_kind"]["confirmation"] == {"kept": 1, "broken": 1, "kept_rate": 0.5}
    # b3 cancelled right after the lost-slot SMS; b4's low score came after the desk change
    assert t["moments_of_truth"] == {
        "cancellation": [{"touchpoint": "sms.offer_lost_slot", "count": 1, "share": 1.0}],
        "low_score": [{"touchpoint": "booking.changed", "count": 1, "share": 1.0}],
    }
    days = {day["date"]: day for day in body["days"]}
    assert list(days) == [D1.isoformat(), D2.isoformat(), D3.isoformat()]
    assert [days[d.isoformat()]["bookings"] for d in (D1, D2, D3)] == [3, 3, 1]
    assert days[D1.isoformat()]["bookings_by_channel"] == {"front_desk": 1, "partner": 1, "web": 1}
    assert days[D2.isoformat()]["feedback_mean"] == 3.0  # 2 and 4
    assert sum(day["no_shows"] for day in body["days"]) == t["no_shows"]


async def test_metrics_are_the_business_staffs_only(world: World) -> None:
    url = f"/v1/businesses/{world.business_id}/journey/metrics"
    period = {"from": D1.isoformat(), "to": D3.isoformat()}

    assert (await world.client("other_staff").get(url, params=period)).status_code == 404
    assert (await world.client("partner").get(url, params=period)).status_code == 403
    assert (await world.client("front_desk").get(url, params=period)).status_code == 200
    backwards = await world.client("manager").get(
        url, params={"from": D3.isoformat(), "to": D1.isoformat()}
    )
    assert backwards.status_code == 422
    assert backwards.headers["content-type"].startswith("application/problem+json")
    too_long = {"from": D1.isoformat(), "to": (D1 + timedelta(days=200)).isoformat()}
    assert (await world.client("manager").get(url, params=too_long)).status_code == 422
    nonsense = await world.client("manager").get(url, params={"from": "yesterday"})
    assert nonsense.status_code == 400


async def _metrics(world: World) -> dict[str, Any]:
    answer = await world.client("manager").get(
        f"/v1/businesses/{world.business_id}/journey/metrics",
        params={"from": D1.isoformat(), "to": D3.isoformat()},
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def _built_at(world: World) -> dict[date, datetime]:
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT day, built_at FROM journey_day WHERE business_id = $1", world.business_id
        )
    return {row["day"]: row["built_at"] for row in rows}


async def test_metrics_follow_changes_made_after_the_summaries_were_built(world: World) -> None:
    await _seed(world)
    await _metrics(world)  # builds the three days' summaries
    built = await _built_at(world)
    assert set(built) == {D1, D2, D3}
    await _metrics(world)
    assert await _built_at(world) == built  # nothing written: nothing rebuilt

    async with db.transaction() as conn:
        s = Seed(world, conn)
        s.n = 100  # past the seed's customers and message keys
        b1, b5, b7 = [
            await conn.fetchval(
                "SELECT id FROM booking WHERE business_id = $1 AND starts_at = $2",
                world.business_id,
                rome(day, hour),
            )
            for day, hour in ((D1, 10), (D2, 11), (D3, 10))
        ]
        # b1 (D1, web, reminder delivered, score 5) moves to D3 at noon
        moved_to = rome(D3, 12)
        await conn.execute(
            "UPDATE booking SET starts_at = $2::timestamptz, "
            "ends_at = $2::timestamptz + interval '30 minutes', blocked_from = $2::timestamptz, "
            "blocked_until = $2::timestamptz + interval '40 minutes' WHERE id = $1",
            b1,
            moved_to,
        )
        # b5 (D2 no-show) gets a reminder, sent then delivered
        c5 = await conn.fetchval("SELECT customer_id FROM booking WHERE id = $1", b5)
        await s.sms(b5, c5, "reminder", rome(D2, 11) - timedelta(days=1), status="sent")
        await conn.execute(
            "UPDATE message SET status = 'delivered' WHERE booking_id = $1 AND template = "
            "'reminder'",
            b5,
        )
        # b7 (D3) scores 1, after its partner change
        await s.feedback(b7, 1, rome(D3, 12))
        # a new front-desk booking on D2
        await s.booking(D2, 15, channel="front_desk", status="confirmed")

    body = await _metrics(world)
    t = body["totals"]
    assert t["bookings"] == 8
    assert t["bookings_by_channel"] == {"front_desk": 2, "partner": 2, "web": 4}
    days = {day["date"]: day for day in body["days"]}
    assert [days[d.isoformat()]["bookings"] for d in (D1, D2, D3)] == [2, 4, 2]
    # reminders sent to b1 b2 b4 b5, delivered to b1 b2 b5
    assert (t["reminders_sent"], t["reminders_delivered"]) == (4, 3)
    # delivered: b1 b2 b5 -> 2 no-shows of 3; not: b4 b6 b7 -> none of 3
    assert t["no_show_rate_reminder_delivered"] == 0.6667
    assert t["no_show_rate_no_reminder_delivered"] == 0.0
    # scores 5 (b1) 2 (b4) 4 (b6) 1 (b7); Giulia has b1 b4 b7
    assert (t["feedback_count"], t["feedback_mean"]) == (4, 3.0)
    assert t["feedback_by"]["staff"] == [
        {"name": "Giulia", "count": 3, "mean": 2.67},
        {"name": "Marco", "count": 1, "mean": 4.0},
    ]
    assert days[D3.isoformat()]["feedback_mean"] == 3.0  # b7's 1 and b1's 5
    assert t["moments_of_truth"]["low_score"] == [
        {"touchpoint": "booking.changed", "count": 2, "share": 1.0}
    ]
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM journey_change") == 0

    # The summaries kept current equal the summaries built again from nothing.
    async with db.connection() as conn:
        await conn.execute("DELETE FROM journey_day")
    assert await _metrics(world) == body

    # Rows counted by other statements (an older release) are counted again.
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE journey_day SET counted_by = 'older', figures = '{}' WHERE day = $1", D2
        )
    assert await _metrics(world) == body

    # A new zone rebuilds every day in it.
    async with db.connection() as conn:
        await conn.execute("UPDATE business SET time_zone = 'UTC' WHERE id = $1", world.business_id)
    in_utc = await _metrics(world)
    assert in_utc["time_zone"] == "UTC"
    assert in_utc["totals"]["bookings"] == 8
    async with db.connection() as conn:
        zones = await conn.fetch("SELECT DISTINCT time_zone FROM journey_day")
    assert [row["time_zone"] for row in zones] == ["UTC"]


async def test_the_worker_folds_notes_nobody_read_into_dropped_days(world: World) -> None:
    await _seed(world)
    await _metrics(world)
    async with db.transaction() as conn:
        s = Seed(world, conn)
        s.n = 100
        await s.booking(D2, 15, channel="front_desk", status="confirmed")

    assert await summary.fold_all_notes() == 1

    async with db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM journey_change") == 0
    assert set(await _built_at(world)) == {D1, D3}
    assert (await _metrics(world))["totals"]["bookings"] == 8
