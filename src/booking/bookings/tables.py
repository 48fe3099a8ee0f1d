"""Bookings (holds are bookings in status ``held``) and their append-only history."""

from piccolo.columns import JSONB, UUID, Boolean, Bytea, Integer, Text, Timestamptz
from piccolo.table import Table


class Booking(Table, tablename="booking"):
    id = UUID(primary_key=True)
    business_id = UUID()
    staff_id = UUID()
    service_id = UUID()
    customer_id = UUID(null=True)
    partner_id = UUID(null=True)
    status = Text()
    channel = Text()
    reference_code = Text()
    starts_at = Timestamptz()
    ends_at = Timestamptz()
    blocked_from = Timestamptz()
    blocked_until = Timestamptz()
    version = Integer(default=1)
    change_count = Integer(default=0)
    hold_expires_at = Timestamptz(null=True)
    hold_token_hash = Bytea(null=True)
    cancel_reason = Text(null=True)
    notes = Text(default="")
    created_by = Text(default="system")
    created_at = Timestamptz()
    updated_at = Timestamptz()


class BookingHistory(Table, tablename="booking_history"):
    booking_id = UUID()
    business_id = UUID()
    occurred_at = Timestamptz()
    event = Text()
    from_status = Text(null=True)
    to_status = Text(null=True)
    actor_type = Text()
    actor_id = Text()
    channel = Text()
    changes = JSONB()
    reason = Text(null=True)
    policy_override = Boolean(default=False)
