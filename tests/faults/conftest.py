"""Fault-drill fixtures: one private PostgreSQL + Redis for the notification drills."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.sms_drill import SmsStack, private_sms_stack


@pytest.fixture(scope="session")
def sms_stack() -> Iterator[SmsStack]:
    with private_sms_stack() as stack:
        yield stack
