"""CalDAV's own connections check the address they reached: a calendar that passed the
registration check but now resolves to a private address (DNS rebinding) is refused at
connect time, before a byte is sent; the same server is read when private addresses are
allowed (local development)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import pytest

from booking.calendars.fetch import FetchFailed, _caldav_read
from booking.outbound import OutboundPolicy
from tests.calendars.helpers import calendar, event, radicale_calendar, save_event
from tests.support import at


async def test_a_private_peer_is_refused_at_connect_and_allowed_in_development(
    radicale: str,
) -> None:
    url, user = await radicale_calendar(radicale)
    await save_event(url, user, calendar(event("dentist", at(3, 9), at(3, 10))))
    # "localhost" names the same server; the registration check would refuse the name,
    # so this stands for a public name that rebinds to 127.0.0.1 after registration.
    parts = urlsplit(url)
    rebound = urlunsplit(parts._replace(netloc=f"localhost:{parts.port}"))

    strict = OutboundPolicy(allow_http=True, allow_private=False)
    with pytest.raises(FetchFailed) as refused:
        await asyncio.to_thread(_caldav_read, rebound, user, "", None, strict)
    assert refused.value.error_class == "refused-address"

    development = OutboundPolicy(allow_http=True, allow_private=True)
    fetched = await asyncio.to_thread(_caldav_read, rebound, user, "", None, development)
    assert fetched.bodies is not None
    assert any(b"dentist" in body for body in fetched.bodies)
