"""HTTP for notifications: Twilio's webhooks and a booking's message history."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromPath
from twilio.twiml.messaging_response import MessagingResponse

from booking.access.principal import Principal
from booking.errors import Forbidden
from booking.notifications import delivery, service
from booking.notifications.inbound import handle_inbound
from booking.notifications.schemas import MessageOut, message_out
from booking.notifications.signature import SIGNATURE_HEADER, twilio_signature_valid
from booking.settings import Settings
from booking.wire_time import UTC_ZONE, business_zone


async def verified_form(request: Request[Any, Any, Any], settings: Settings) -> FormMultiDict:
    """The form body, once its X-Twilio-Signature matches the public URL Twilio called."""
    form = await request.form()
    url = settings.public_base_url + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    if not twilio_signature_valid(
        settings.twilio_auth_token, url, form, request.headers.get(SIGNATURE_HEADER)
    ):
        raise Forbidden("The request does not carry a valid X-Twilio-Signature.")
    return form


def _int_or_none(raw: Any) -> int | None:
    try:
        return int(raw) if raw not in (None, "") else None
    except (TypeError, ValueError):
        return None


class TwilioWebhookController(Controller):
    path = "/v1/twilio"
    tags = ["twilio"]
    security = [{}]  # signed by Twilio, not by an API key

    @post(
        "/status",
        summary="Twilio StatusCallback: a message's delivery status",
        description=(
            "Form-encoded as Twilio sends it; 403 without a valid X-Twilio-Signature. "
            "An unknown MessageSid is acknowledged and ignored."
        ),
        status_code=204,
    )
    async def status(
        self, request: Request[Any, Any, Any], settings: NamedDependency[Settings]
    ) -> None:
        form = await verified_form(request, settings)
        sid = str(form.get("MessageSid") or form.get("SmsSid") or "")
        status = str(form.get("MessageStatus") or form.get("SmsStatus") or "")
        if sid and status:
            await delivery.record_delivery_status(sid, status, _int_or_none(form.get("ErrorCode")))

    @post(
        "/inbound",
        summary="Twilio inbound SMS: replies, STOP/START/HELP and confirmation keywords",
        description="Answers with TwiML; 403 without a valid X-Twilio-Signature.",
        status_code=200,
    )
    async def inbound(
        self, request: Request[Any, Any, Any], settings: NamedDependency[Settings]
    ) -> Response[str]:
        form = await verified_form(request, settings)
        twiml = MessagingResponse()
        sid = str(form.get("MessageSid") or form.get("SmsSid") or "")
        sender = str(form.get("From") or "")
        if sid and sender:
            result = await handle_inbound(
                sid,
                sender,
                str(form.get("To") or ""),
                str(form.get("Body") or ""),
                on_unmatched=request.app.state.on_unmatched_sms,
            )
            if result.reply:
                twiml.message(result.reply)
        return Response(str(twiml), media_type="application/xml")


class MessageController(Controller):
    path = "/v1"
    tags = ["notifications"]

    @get(
        "/bookings/{booking_id:uuid}/messages",
        summary="The booking's SMS and their delivery status, oldest first",
        description="Same access as reading the booking. Links in bodies are redacted.",
    )
    async def list_messages(
        self, booking_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> list[MessageOut]:
        rows = await service.message_history(principal, booking_id)
        tz = await business_zone(rows[0]["business_id"]) if rows else UTC_ZONE
        return [message_out(row, tz) for row in rows]
