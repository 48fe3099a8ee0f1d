"""Rows of the guarantee (mirrors of the migration, which owns the constraints)."""

from piccolo.columns import UUID, SmallInt, Text, Timestamptz
from piccolo.table import Table


class FreedSlot(Table, tablename="freed_slot"):
    id = UUID(primary_key=True)
    business_id = UUID()
    source_booking_id = UUID(null=True)
    staff_id = UUID()
    starts_at = Timestamptz()
    status = Text(default="open")
    dedupe_key = Text()
    created_at = Timestamptz()
    closed_at = Timestamptz(null=True)


class WaitlistEntry(Table, tablename="waitlist_entry"):
    id = UUID(primary_key=True)
    business_id = UUID()
    booking_id = UUID()
    earliest = Timestamptz()
    latest = Timestamptz()
    status = Text(default="waiting")
    created_by = Text()
    created_at = Timestamptz()
    closed_at = Timestamptz(null=True)


class RescheduleOffer(Table, tablename="reschedule_offer"):
    id = UUID(primary_key=True)
    business_id = UUID()
    booking_id = UUID()
    kind = Text()
    status = Text(default="open")
    reason = Text(default="")
    expires_at = Timestamptz()
    waitlist_entry_id = UUID(null=True)
    freed_slot_id = UUID(null=True)
    accepted_position = SmallInt(null=True)
    decided_by = Text(null=True)
    created_at = Timestamptz()
    decided_at = Timestamptz(null=True)


class RescheduleOption(Table, tablename="reschedule_option"):
    offer_id = UUID(primary_key=True)
    position = SmallInt()
    hold_id = UUID()
    staff_id = UUID()
    starts_at = Timestamptz()


class Promise(Table, tablename="promise"):
    id = UUID(primary_key=True)
    business_id = UUID()
    booking_id = UUID(null=True)
    kind = Text()
    subject = Text()
    customer_phone = Text(null=True)
    made_at = Timestamptz()
    nudge_at = Timestamptz()
    due_at = Timestamptz()
    status = Text(default="open")
    nudged_at = Timestamptz(null=True)
    alerted_at = Timestamptz(null=True)
    resolved_at = Timestamptz(null=True)
