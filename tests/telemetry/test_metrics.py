"""/metrics on the API process: counters move with a booking; operators only."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from booking.settings import Settings
from booking.telemetry.endpoint import operator_allowed
from tests.notifications.test_pipeline import book
from tests.support import World


async def scrape(world: World) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await world.client(None).get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_booking_moves_the_counters_a_scrape_sees(world: World) -> None:
    before = await scrape(world)

    booking = await book(world)
    taken = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(
            datetime.fromisoformat(booking["starts_at"]),
            phone="+393330000001",
            staff=UUID(booking["staff_id"]),
        ),
    )
    after = await scrape(world)

    assert taken.status_code == 409, taken.text
    assert value(after, "booking_bookings_total", outcome="created") == (
        value(before, "booking_bookings_total", outcome="created") + 1
    )
    assert value(after, "booking_bookings_total", outcome="conflict") == (
        value(before, "booking_bookings_total", outcome="conflict") + 1
    )
    route = "/v1/businesses/{business_id}/bookings"
    created = {"method": "POST", "route": route, "status": "201"}
    assert value(after, "booking_http_requests_total", **created) >= (
        value(before, "booking_http_requests_total", **created) + 1
    )
    count = value(after, "booking_http_request_duration_seconds_count", method="POST", route=route)
    assert count >= 2
    # The backlog gauge read at scrape time: the booking's outbox row waits (no worker here).
    assert value(after, "booking_outbox_backlog") >= 1
    assert value(after, "booking_outbox_oldest_age_seconds") >= 0
    assert value(after, "booking_db_pool_connections", state="max") > 0


async def test_no_label_carries_an_id(world: World) -> None:
    booking = await book(world)
    await world.client("front_desk").get(f"/v1/bookings/{booking['id']}")
    text = (await world.client(None).get("/metrics")).text
    assert booking["id"] not in text
    assert str(world.business_id) not in text
    assert re.search(r'route="/v1/bookings/\{booking_id\}"', text)


@pytest.mark.parametrize(
    ("token", "host", "header", "allowed"),
    [
        ("", "127.0.0.1", None, True),
        ("", "::1", None, True),
        ("", "10.0.0.7", None, False),
        ("s3cret-operator", "127.0.0.1", None, False),
        ("s3cret-operator", "10.0.0.7", "Bearer s3cret-operator", True),
        ("s3cret-operator", "10.0.0.7", "Bearer wrong", False),
    ],
)
def test_only_operators_may_scrape(
    token: str, host: str, header: str | None, allowed: bool
) -> None:
    from litestar import Request

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/metrics",
        "headers": [(b"authorization", header.encode())] if header else [],
        "client": (host, 1234),
        "query_string": b"",
    }
    request: Request[Any, Any, Any] = Request(scope)  # type: ignore[arg-type]
    assert operator_allowed(request, Settings(metrics_token=token)) is allowed


async def test_a_stranger_gets_the_unknown_path_answer(world: World) -> None:
    # Same answer as a path that does not exist, from a non-loopback address.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_app(), client=("192.0.2.10", 4000)),  # type: ignore[arg-type]
        base_url="http://testserver",
    ) as client:
        metrics = await client.get("/metrics")
        missing = await client.get("/no-such-path")
    assert metrics.status_code == missing.status_code == 404


def _app() -> object:
    from booking.app import create_app

    return create_app(Settings.from_env())
