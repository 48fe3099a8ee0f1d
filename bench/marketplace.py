"""Actions Center v3 beside our own REST, in one run (issue 16).

BatchAvailabilityLookup for 20 staff x 7 days of slots vs GET .../availability for the
same 7 days; CreateBooking at 16 clients vs POST .../bookings at 16 clients, without
and with an Idempotency-Key (CreateBooking always carries its idempotency_token).
Usage: nice -n 10 python -m bench.marketplace [--rounds 10] [--per-client 10] [--profile]
    [--clients 16]  (create clients; 1 shows per-call latency rather than CPU queueing)
(--profile runs the server under py-spy and prints where its time went; figures taken
that way are not comparable.)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from bench.proc import CpuMeter, postmaster_pid
from bench.seed import ROME, seeded_database
from bench.server import ROOT, running_api

# CreateBooking always carries an idempotency_token; REST is timed without and with
# an Idempotency-Key (the same store), each on its own days or hours.
MODES = ("v3", "rest", "rest+key")
WARM = 2  # untimed calls first: lookups of each kind, creates per client and mode
LABELS = {
    "v3": "v3 CreateBooking",
    "rest": "REST POST bookings",
    "rest+key": "REST POST bookings + Idempotency-Key",
}


def _api_pid(base: str) -> int | None:
    """The `booking api` process serving ``base`` (not py-spy's wrapper)."""
    port = base.rpartition(":")[2]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"api" in argv and port.encode() in argv and not argv[0].endswith(b"py-spy"):
            return int(entry.name)
    return None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _partner(url: str, businesses: list[UUID]) -> str:
    from booking import db
    from booking.access.service import create_api_key, create_partner

    await db.start_pool(url, 1, 2)
    try:
        partner = await create_partner("Actions Center bench")
        key = await create_api_key(
            kind="partner",
            partner_id=partner,
            business_ids=businesses,
            scopes=[
                "availability:read",
                "bookings:read",
                "bookings:write",
                "bookings:change",
                "bookings:cancel",
            ],
            name="bench",
            rate_limit_per_minute=0,
        )
        async with db.connection() as conn:
            for business in businesses:
                await conn.execute(
                    "INSERT INTO marketplace_listing (business_id, partner_id) VALUES ($1, $2)",
                    business,
                    partner,
                )
        return key.key
    finally:
        await db.close_pool()


async def _minutes(url: str, service_id: UUID) -> int:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval("SELECT duration_minutes FROM service WHERE id = $1", service_id)
        )
    finally:
        await conn.close()


async def main(rounds: int, per_client: int, profile: bool = False, clients: int = 16) -> None:
    url, redis_url, world = await seeded_database("booking_bench_market", 500)
    key = await _partner(url, [world.search.business_id, world.writes.business_id])
    basic = base64.b64encode(f"ac:{key}".encode()).decode()
    profile_to = ROOT / ".local" / "profile-marketplace.txt" if profile else None
    with running_api(url, redis_url, profile_to=profile_to) as base:
        ac = httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Basic {basic}"}, timeout=60
        )
        rest = httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        search = world.search
        start_day = world.first_day
        minutes = await _minutes(url, search.service_id)
        grid: list[dict[str, Any]] = []
        for d in range(7):
            moment = datetime.combine(start_day + timedelta(days=d), datetime.min.time(), ROME)
            moment = moment.replace(hour=9)
            while moment.hour < 18:
                for member in search.staff:
                    grid.append(
                        {
                            "service_id": str(search.service_id),
                            "start_sec": str(int(moment.timestamp())),
                            "duration_sec": str(minutes * 60),
                            "resource_ids": {"staff_id": str(member)},
                        }
                    )
                moment += timedelta(minutes=15)
        # Encoded once, to bytes: httpx's stdlib JSON encoding of ~0.9 MB is the client's
        # time, not the server's (it was ~10 ms of every timed call before 2026-12-02).
        lookup_body = json.dumps(
            {"merchant_id": str(search.business_id), "slot_time": grid}
        ).encode()
        lookup_headers = {"content-type": "application/json"}
        frm = datetime.combine(start_day, datetime.min.time(), ROME)
        params = {
            "service_id": str(search.service_id),
            "from": frm.isoformat(),
            "to": (frm + timedelta(days=7)).isoformat(),
        }
        ac_times: list[float] = []
        rest_times: list[float] = []
        # Baseline for the protocol's own payload: the same body sent to the same method,
        # read whole by the server (its body limit reads before any handler) and refused
        # 401 at once (unreadable Basic credentials: no parsing, no database).
        upload_times: list[float] = []
        for n in range(rounds + WARM):  # the first WARM rounds untimed, for both
            if n == WARM:
                ac_times.clear()
                rest_times.clear()
                upload_times.clear()
            t = time.perf_counter()
            r = await ac.post(
                "/actions-center/v3/BatchAvailabilityLookup/",
                content=lookup_body,
                headers={**lookup_headers, "Authorization": "Basic !"},
            )
            upload_times.append(time.perf_counter() - t)
            assert r.status_code == 401, r.text[:300]
            t = time.perf_counter()
            r = await ac.post(
                "/actions-center/v3/BatchAvailabilityLookup/",
                content=lookup_body,
                headers=lookup_headers,
            )
            ac_times.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text[:300]
            r_lookup = r.content
            t = time.perf_counter()
            r = await rest.get(f"/v1/businesses/{search.business_id}/availability", params=params)
            rest_times.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text[:300]
        print(
            f"lookup {len(grid)} slots: v3 p50 {pct(ac_times, 0.5):.1f} ms p99 "
            f"{pct(ac_times, 0.99):.1f} ms | REST p50 {pct(rest_times, 0.5):.1f} ms p99 "
            f"{pct(rest_times, 0.99):.1f} ms | ratio p50 "
            f"{pct(ac_times, 0.5) / pct(rest_times, 0.5):.2f} p99 "
            f"{pct(ac_times, 0.99) / pct(rest_times, 0.99):.2f}"
        )
        meter = CpuMeter(_api_pid(base), await postmaster_pid(url))
        cpu = meter.now()
        for _ in range(rounds):  # CPU apart: one kind of call at a time
            await ac.post(
                "/actions-center/v3/BatchAvailabilityLookup/",
                content=lookup_body,
                headers=lookup_headers,
            )
        print(f"  v3 {meter.per_call(cpu, rounds)}")
        cpu = meter.now()
        for _ in range(rounds):
            await rest.get(f"/v1/businesses/{search.business_id}/availability", params=params)
        print(f"  REST {meter.per_call(cpu, rounds)}")
        print(
            f"  baseline: the same {len(lookup_body) / 1e6:.2f} MB body read and refused 401: "
            f"p50 {pct(upload_times, 0.5):.1f} ms p99 {pct(upload_times, 0.99):.1f} ms "
            f"(v3 answers {len(r_lookup) / 1e6:.2f} MB, REST {len(r.content) / 1e6:.2f} MB)"
        )

        writes = world.writes
        write_minutes = await _minutes(url, writes.service_id)
        day0 = world.first_day + timedelta(days=1)

        async def client(n: int, mode: str, out: list[float], warm: bool = False) -> None:
            v3 = mode == "v3"
            # Each mode its own days or hours; the warm-up calls theirs, two hours later.
            hour = (9 if mode == "rest+key" else 8) + (2 if warm else 0)
            for i in range(WARM if warm else per_client):
                when = datetime.combine(
                    day0 + timedelta(days=i + (0 if v3 else per_client)), datetime.min.time(), ROME
                ).replace(hour=hour)
                staff = writes.staff[n]
                phone = f"+39333{MODES.index(mode)}{n:02d}{i + (5000 if warm else 0):04d}"
                t = time.perf_counter()
                if v3:
                    r = await ac.post(
                        "/actions-center/v3/CreateBooking/",
                        json={
                            "slot": {
                                "merchant_id": str(writes.business_id),
                                "service_id": str(writes.service_id),
                                "start_sec": str(int(when.timestamp())),
                                "duration_sec": str(write_minutes * 60),
                                "resources": {"staff_id": str(staff)},
                            },
                            "user_information": {
                                "user_id": f"u{n}-{i}",
                                "given_name": "B",
                                "telephone": phone,
                            },
                            "idempotency_token": f"bench-{n}-{i}{'-warm' if warm else ''}",
                        },
                    )
                    ok = r.status_code == 200 and "booking" in r.json()
                else:
                    r = await rest.post(
                        f"/v1/businesses/{writes.business_id}/bookings",
                        json={
                            "service_id": str(writes.service_id),
                            "starts_at": when.isoformat(),
                            "staff_id": str(staff),
                            "customer": {"name": "B", "phone": phone},
                        },
                        headers=(
                            {"Idempotency-Key": f"bench-{n}-{i}{'-warm' if warm else ''}"}
                            if mode == "rest+key"
                            else {}
                        ),
                    )
                    ok = r.status_code == 201
                out.append(time.perf_counter() - t)
                assert ok, r.text[:300]

        # Untimed first: the API's pool grows to the clients' size and each connection
        # prepares its statements (before 2026-12-02 13:10 the mode timed first, v3,
        # paid for all of that: its p99 was 2-3x the others').
        for mode in MODES:
            await asyncio.gather(*(client(n, mode, [], warm=True) for n in range(clients)))
        runs: dict[str, list[float]] = {}
        for mode in MODES:
            out = runs[mode] = []
            cpu = meter.now()
            await asyncio.gather(*(client(n, mode, out) for n in range(clients)))
            print(
                f"{LABELS[mode]} x{clients} clients, {len(out)} calls: p50 {pct(out, 0.5):.1f} ms "
                f"p99 {pct(out, 0.99):.1f} ms; {meter.per_call(cpu, len(out))}"
            )
        for base in ("rest", "rest+key"):
            print(
                f"create ratio to {LABELS[base]}: p50 "
                f"{pct(runs['v3'], 0.5) / pct(runs[base], 0.5):.2f} "
                f"p99 {pct(runs['v3'], 0.99) / pct(runs[base], 0.99):.2f}"
            )
        await ac.aclose()
        await rest.aclose()
    if profile_to is not None:
        from bench.profile import summarize

        print(f"raw profile: {profile_to}")
        print(summarize(profile_to, top=40))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-client", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="server under py-spy")
    parser.add_argument("--clients", type=int, default=16, help="create clients (at most 64)")
    arguments = parser.parse_args()
    asyncio.run(
        main(arguments.rounds, arguments.per_client, arguments.profile, min(64, arguments.clients))
    )
