from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.calendars.servers import ics_server, start_radicale
from tests.notifications.fixtures import fake, pipeline, redis, twilio_api

__all__ = ["fake", "ics_server", "pipeline", "redis", "twilio_api"]


@pytest.fixture(scope="session")
def radicale() -> Iterator[str]:
    with start_radicale() as url:
        yield url
