"""One request id, followed with grep from the API's access log to the SMS job's log.

The real processes: `booking api` (access log on, JSON lines), the production worker
(tests/faults/drill_worker.py) and the fake Twilio. The caller sends ``X-Request-Id``;
the API echoes it, writes it into the booking's outbox row, and the relay passes it to
the send job, whose log lines carry it. No line of either log holds the booking link's
token, the customer's full phone number or the message body.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.faults.sms_drill import SmsStack, phone, sms_rig, wait_for

REQUEST_ID = "trace-7f3a-booking-1"


def json_lines(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


async def test_one_request_id_from_the_api_log_to_the_sms_jobs_log(sms_stack: SmsStack) -> None:
    async with sms_rig(sms_stack, quiet=False, BOOKING_LOG_LEVEL="INFO") as rig:
        tenant = await rig.tenant()
        rig.start_worker()
        async with httpx.AsyncClient(base_url=rig.api, timeout=30) as http:
            response = await http.post(
                f"/v1/businesses/{tenant.business_id}/bookings",
                json=tenant.booking(0),
                headers={"Authorization": f"Bearer {tenant.key}", "X-Request-Id": REQUEST_ID},
            )
        assert response.status_code == 201, response.text
        assert response.headers["x-request-id"] == REQUEST_ID

        async def sent() -> bool:
            return (await rig.message_counts()).get("sent", 0) == 1

        await wait_for("the confirmation sent", sent, within=30)
        [sms] = await rig.fake.messages()
        body = sms["body"]
        token = body.rsplit("/", 1)[-1]
        assert token.startswith("bt.")
        [stored] = await rig.fetch("SELECT body FROM message")
        assert token not in stored["body"]  # the link's token is minted at send time
        api_log = (rig.logs / "api.log").read_text()
        worker_log = rig.worker_log()

    api_lines = [line for line in json_lines(api_log) if line.get("request_id") == REQUEST_ID]
    worker_lines = [line for line in json_lines(worker_log) if line.get("request_id") == REQUEST_ID]
    assert any(
        line["event"] == "request" and line["method"] == "POST" and line["status"] == 201
        for line in api_lines
    ), api_log[-3000:]
    sends = [line for line in worker_lines if line["event"] == "sms sent"]
    assert len(sends) == 1, worker_log[-3000:]
    assert sends[0]["job"] == "send_sms"
    for text in (api_log, worker_log):
        assert token not in text
        assert phone(0) not in text
        assert body not in text
