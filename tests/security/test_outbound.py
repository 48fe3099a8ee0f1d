"""Findings 1 (webhook SSRF, reply echoed) of issue 18: the outbound policy.

Registration runs against a real API process with the strict (production) policy;
the connection-time check runs the policy's own POST against a real local server
with a resolver whose answer changes after registration (DNS rebinding).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from booking import db
from booking.access.service import create_api_key
from booking.outbound import OutboundPolicy, Refused
from tests.support import World

# Every form must be refused at registration by the strict policy (all 201 before).
REFUSED_URLS = [
    "http://example.com/hook",  # plain http in production
    "ftp://example.com/hook",
    "https://127.0.0.1/hook",
    "https://127.1.2.3:8443/internal",
    "https://localhost/hook",
    "https://api.localhost/hook",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
    "https://[::ffff:7f00:1]/hook",
    "https://[64:ff9b::7f00:1]/hook",  # NAT64 form of loopback
    "https://[2002:7f00:1::]/hook",  # 6to4 form of loopback
    "https://2130706433/hook",  # decimal integer
    "https://0177.0.0.1/hook",  # octal
    "https://0x7f000001/hook",  # hex integer
    "https://0x7f.0.0.1/hook",
    "https://127.1/hook",  # short form
    "https://0.0.0.0/hook",  # unspecified
    "https://[::]/hook",
    "https://10.0.0.1/hook",
    "https://172.16.5.4/hook",
    "https://192.168.1.1/hook",
    "https://100.64.0.1/hook",  # CGNAT
    "https://169.254.169.254/latest/meta-data/",  # metadata, link-local
    "https://[fe80::1]/hook",
    "https://[fd00:ec2::254]/hook",
    "https://[fc00::1]/hook",  # unique local
    "https://224.0.0.1/hook",  # multicast
    "https://[ff02::1]/hook",
    "https://240.0.0.1/hook",  # reserved
    "https://255.255.255.255/hook",
    "https://192.0.2.10/hook",  # documentation
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://metadata.google.internal./computeMetadata/v1/",
    "https://user:pass@example.com/hook",  # credentials
    "https://token@example.com/hook",
    "https://does-not-resolve.invalid/hook",
]


async def _partner_key(world: World) -> str:
    issued = await create_api_key(
        kind="partner",
        partner_id=world.partner_id,
        business_ids=[world.business_id],
        scopes=["webhooks:manage", "bookings:read"],
    )
    return issued.key


async def test_registration_refuses_every_inside_address_form(strict_world: World) -> None:
    assert len(REFUSED_URLS) >= 20
    client = strict_world.client(
        None, headers={"Authorization": f"Bearer {await _partner_key(strict_world)}"}
    )
    answers = {}
    for url in REFUSED_URLS:
        answer = await client.post(
            "/v1/webhook-endpoints", json={"url": url, "event_types": ["booking.created"]}
        )
        answers[url] = answer.status_code
        if answer.status_code == 422:
            problem = answer.json()
            assert problem["type"].endswith("invalid-input"), problem
            assert answer.headers["content-type"].startswith("application/problem+json")
    assert {url: code for url, code in answers.items() if code != 422} == {}
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM webhook_endpoint") == 0


async def test_registration_accepts_a_public_https_url(strict_world: World) -> None:
    """The control: the strict policy is not simply refusing everything (a literal public
    address needs no DNS, so this holds offline)."""
    client = strict_world.client(
        None, headers={"Authorization": f"Bearer {await _partner_key(strict_world)}"}
    )
    answer = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://93.184.215.14/hook", "event_types": ["booking.created"]},
    )
    assert answer.status_code == 201, answer.text


@dataclass
class Server:
    port: int = 0
    hits: list[str] = field(default_factory=list)


@pytest.fixture
async def inside_server() -> AsyncIterator[Server]:
    """An 'internal service' on loopback that must never be reached."""
    state = Server()

    async def secret(request: web.Request) -> web.Response:
        state.hits.append(request.path)
        return web.Response(status=500, text="internal-secret " * 100)

    async def moved(request: web.Request) -> web.Response:
        state.hits.append(request.path)
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    app = web.Application()
    app.router.add_post("/internal", secret)
    app.router.add_post("/moved", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield state
    await runner.cleanup()


class Rebinding:
    """Answers a public address first (registration), loopback afterwards (delivery)."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return ["93.184.215.14"] if self.calls == 1 else ["127.0.0.1"]


async def test_a_name_that_rebinds_to_loopback_after_registration_is_refused(
    inside_server: Server,
) -> None:
    resolver = Rebinding()
    policy = OutboundPolicy(allow_http=True, allow_private=False, resolve=resolver)
    url = f"http://rebind.test:{inside_server.port}/internal"
    await policy.check(url)  # registration: the name resolves to a public address
    outcome = await policy.post(url, b"{}", {"content-type": "application/json"})
    assert resolver.calls >= 2  # resolved again when connecting
    assert (outcome.status_code, outcome.error_class) == (None, "refused-address")
    assert inside_server.hits == []
    with pytest.raises(Refused):
        await policy.check(url)  # and a re-check now refuses too


async def test_the_same_request_goes_through_when_loopback_is_allowed(
    inside_server: Server,
) -> None:
    """The control for the rebinding test: the resolver and server really work, and the
    reply's body is not part of the outcome (only a status and an error class)."""
    resolver = Rebinding()
    resolver.calls = 1  # past registration: answers 127.0.0.1 from now on
    policy = OutboundPolicy(allow_http=True, allow_private=True, resolve=resolver)
    url = f"http://rebind.test:{inside_server.port}/internal"
    outcome = await policy.post(url, b"{}", {})
    assert inside_server.hits == ["/internal"]
    assert (outcome.status_code, outcome.error_class) == (500, "http-500")


async def test_redirects_are_not_followed(inside_server: Server) -> None:
    policy = OutboundPolicy(allow_http=True, allow_private=True)
    outcome = await policy.post(f"http://127.0.0.1:{inside_server.port}/moved", b"{}", {})
    assert (outcome.status_code, outcome.error_class) == (302, "redirect-not-followed")
    assert inside_server.hits == ["/moved"]


async def test_literal_and_integer_forms_are_refused_at_connection_time(
    inside_server: Server,
) -> None:
    """A URL stored before the policy existed is still refused when delivering."""
    policy = OutboundPolicy(allow_http=True, allow_private=False)
    for host in ("127.0.0.1", "2130706433", "0177.0.0.1", "[::ffff:127.0.0.1]"):
        outcome = await policy.post(f"http://{host}:{inside_server.port}/internal", b"{}", {})
        assert outcome.error_class == "refused-address", host
    assert inside_server.hits == []
