"""SMS messages, reminders and inbound replies (the migration is the source of truth)."""

from piccolo.columns import UUID, BigInt, Integer, Text, Timestamptz
from piccolo.table import Table


class Message(Table, tablename="message"):
    id = UUID(primary_key=True)
    business_id = UUID(null=True)
    booking_id = UUID(null=True)
    customer_id = UUID(null=True)
    outbox_id = BigInt(null=True)
    dedupe_key = Text(unique=True)
    template = Text()
    locale = Text()
    to_phone = Text()
    body = Text()
    status = Text(default="pending")
    provider = Text(null=True)
    provider_sid = Text(null=True)
    provider_status = Text(null=True)
    error_code = Integer(null=True)
    error_message = Text(null=True)
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz()
    claimed_until = Timestamptz(null=True)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    sent_at = Timestamptz(null=True)
    delivered_at = Timestamptz(null=True)


class Reminder(Table, tablename="reminder"):
    business_id = UUID()
    booking_id = UUID()
    booking_starts_at = Timestamptz()
    offset_minutes = Integer()
    due_at = Timestamptz()
    status = Text(default="scheduled")
    message_id = UUID(null=True)
    created_at = Timestamptz()
    processed_at = Timestamptz(null=True)


class InboundMessage(Table, tablename="inbound_message"):
    provider_sid = Text(unique=True)
    from_phone = Text()
    to_phone = Text(default="")
    body = Text(default="")
    keyword = Text(null=True)
    booking_id = UUID(null=True)
    outcome = Text(default="")
    received_at = Timestamptz()
