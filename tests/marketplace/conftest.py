"""The world's business listed on the Actions Center for partner A; the fake inventory
server of the availability updates."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.calendars.servers import ics_server
from tests.marketplace.inventory_fake import FakeInventory, fake_inventory
from tests.support import World

__all__ = ["ics_server"]  # the schedule-change tests' calendar server


@pytest.fixture
async def listed(world: World) -> World:
    response = await world.client("manager").put(
        f"/v1/businesses/{world.business_id}/marketplaces/actions-center",
        json={"partner_id": str(world.partner_id), "feed_horizon_days": 30},
    )
    assert response.status_code == 200, response.text
    return world


@pytest.fixture
async def inventory() -> AsyncIterator[FakeInventory]:
    async with fake_inventory() as state:
        yield state
