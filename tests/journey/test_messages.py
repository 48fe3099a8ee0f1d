"""Messages that keep the promise visible (issue 14, item 6), end to end."""

from __future__ import annotations

from uuid import UUID

from booking.notifications.templates import format_when
from tests.guarantee.helpers import book, drain, execute, fetch, sms
from tests.notifications.fixtures import Pipeline
from tests.support import World


async def test_the_pending_request_sms_says_by_when_the_customer_hears_back(
    world: World, pipeline: Pipeline
) -> None:
    await execute(
        "UPDATE business SET confirm_within_minutes = 90 WHERE id = $1", world.business_id
    )
    waiting = await book(world, 3, 10, staff=2, service=world.consult, phone="+393330000401")
    assert waiting["status"] == "pending"

    await drain(pipeline)

    [promise] = await fetch(
        "SELECT made_at, due_at FROM promise WHERE kind = 'confirmation' AND booking_id = $1",
        UUID(waiting["id"]),
    )
    assert (promise["due_at"] - promise["made_at"]).total_seconds() == 90 * 60
    [message] = await sms("booking_pending")
    due = format_when(promise["due_at"], "Europe/Rome", "it")  # e.g. "mer 2 dic alle 10:30"
    assert f"ti rispondiamo entro {due}" in message["body"]
    assert "Rispondi SI" in message["body"]
