"""Schemathesis over the app's own OpenAPI document, against the real server.

Every operation in /schema/openapi.json gets generated requests (a bounded
budget fit for CI: EXAMPLES per operation, and the whole module stops
generating after BUDGET_SECONDS), sent with a valid manager key so they get
past authentication. Checks: never a 5xx, and every response whose status the
document declares matches the declared schema and content type.

Path ids are aimed at the test business and a real booking half of the time,
so generation reaches the handlers instead of stopping at 404.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.support import World, at

EXAMPLES = 50
BUDGET_SECONDS = 240.0
_started: list[float] = []
# operation label -> status codes seen, for the closing check below
_seen: dict[str, Counter[int]] = defaultdict(Counter)


def _document() -> dict[str, Any]:
    # The same document the server serves at /schema/openapi.json, built from the
    # app factory (no I/O) so the operations are known when pytest collects.
    from booking.app import create_app

    document: dict[str, Any] = create_app().openapi_schema.to_schema()
    return document


schema = schemathesis.openapi.from_dict(_document())


@pytest.fixture
def real_ids(world: World) -> dict[str, str]:
    """Ids that exist: the test business and one confirmed booking in it."""
    response = httpx.post(
        f"{world.base_url}/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(3, 11), staff=world.staff[0]),
        headers={"Authorization": f"Bearer {world.keys['manager']}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return {"business_id": str(world.business_id), "booking_id": response.json()["id"]}


def _budget_left() -> bool:
    if not _started:
        _started.append(time.monotonic())
    return time.monotonic() - _started[0] < BUDGET_SECONDS


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_without_5xx_and_as_documented(
    case: Any, world: World, real_ids: dict[str, str]
) -> None:
    if not _budget_left():
        return
    if case.path_parameters:
        for name, value in real_ids.items():
            # Half of the cases aim at real rows, chosen by the generated value
            # itself so Hypothesis can still explore both sides.
            if name in case.path_parameters and hash(str(case.path_parameters[name])) % 2:
                case.path_parameters[name] = value
    response = case.call(
        base_url=world.base_url,
        headers={"Authorization": f"Bearer {world.keys['manager']}"},
        timeout=30,
    )
    if case.method.upper() == case.operation.method.upper():  # not the wrong-method probes
        _seen[case.operation.label][response.status_code] += 1
    case.validate_response(
        response,
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )


def test_the_fuzzing_got_past_authentication_into_the_handlers() -> None:
    """Guards the test above: a valid key means no 401, and many operations succeed
    at least once (otherwise the fuzzing only ever met the front door)."""
    if not _seen:
        pytest.skip("the schemathesis test did not run in this session")
    unauthenticated = {op: dict(codes) for op, codes in _seen.items() if codes[401]}
    public = {"/health", "/ready", "/v1/twilio/inbound", "/v1/twilio/status"}
    # The Actions Center protocol has its own credential (HTTP Basic with a partner key),
    # which the fuzzer does not send; tests/marketplace drives those operations.
    own_credential = "/actions-center/"
    assert {
        op
        for op in unauthenticated
        if op.split(" ", 1)[1] not in public and not op.split(" ", 1)[1].startswith(own_credential)
    } == set()
    succeeded = [op for op, codes in _seen.items() if any(200 <= c < 300 for c in codes)]
    # Random ids mostly meet 404s; the real business and booking ids get a good
    # share of operations through to a 2xx (16 of 41 when this was written).
    assert len(succeeded) >= 10, {op: dict(codes) for op, codes in _seen.items()}
