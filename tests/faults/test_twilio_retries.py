"""Fault drill: Twilio answers 429, then 500, then 201.

One booking; its confirmation goes through the worker process to the fake
Twilio process, which answers the first call 429 (Retry-After: 1), the second
500 and the third 201. Exactly one message is delivered, and the fake's own
clock shows the retries spaced by the backoff: the worker's backoff base is
0.3 s here (production 5 s), doubled per attempt, never sooner than
Retry-After (notifications/sending.py::backoff_seconds).
"""

from __future__ import annotations

import httpx

from tests.faults.sms_drill import SmsStack, phone, received_at, sms_rig, wait_for

BACKOFF_BASE = 0.3
RETRY_AFTER = 1.0
CLOCK_SLACK = 0.005  # arq schedules in whole milliseconds


async def test_twilio_429_then_500_then_201_delivers_one_message_with_retries_spaced_by_backoff(
    sms_stack: SmsStack,
) -> None:
    async with sms_rig(sms_stack) as rig:
        tenant = await rig.tenant()
        await rig.fake.script(
            [{"kind": "rate_limit", "retry_after": RETRY_AFTER}, 500, 201], default=201
        )
        async with httpx.AsyncClient(base_url=rig.api, timeout=10) as http:
            response = await tenant.book(http, 0)
        assert response.status_code == 201, response.text
        rig.start_worker("--backoff-base", str(BACKOFF_BASE))

        async def sent() -> bool:
            return (await rig.message_counts()).get("sent", 0) == 1

        await wait_for("the confirmation to be sent", sent, within=30)

        requests = await rig.fake.requests()
        messages = await rig.fake.messages()
        assert len(requests) == 3, requests
        assert {r["form"]["To"] for r in requests} == {phone(0)}
        assert len(messages) == 1
        assert messages[0]["to"] == phone(0)
        assert response.json()["reference_code"] in messages[0]["body"]

        first, second, third = (received_at(r) for r in requests)
        # After the 429: Retry-After (1 s) beats the first backoff (0.3-0.36 s).
        assert (second - first).total_seconds() >= RETRY_AFTER - CLOCK_SLACK
        # After the 500: the second backoff, 2 x 0.3 s (+ up to 20 % jitter).
        assert (third - second).total_seconds() >= 2 * BACKOFF_BASE - CLOCK_SLACK

        [row] = await rig.fetch("SELECT status, attempts, provider_sid, error_code FROM message")
        assert row["status"] == "sent"
        assert row["attempts"] == 3
        assert row["provider_sid"] == messages[0]["sid"]
        assert row["error_code"] is None  # cleared by the success
