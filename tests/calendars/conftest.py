from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.calendars.servers import IcsServer, start_radicale
from tests.notifications.fixtures import fake, pipeline, redis, twilio_api

__all__ = ["fake", "pipeline", "redis", "twilio_api"]


@pytest.fixture(scope="session")
def radicale() -> Iterator[str]:
    with start_radicale() as url:
        yield url


@pytest.fixture
async def ics_server() -> AsyncIterator[IcsServer]:
    server = IcsServer()
    await server.start()
    yield server
    await server.stop()
