"""Tenants and what they sell: businesses, staff, hours, time off, services, customers.

These mirror the schema created by the migrations (which are the source of
truth for constraints); they are used for plain reads and writes.
"""

from piccolo.columns import (
    UUID,
    Array,
    Boolean,
    Integer,
    SmallInt,
    Text,
    Time,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table


class Business(Table, tablename="business"):
    id = UUID(primary_key=True)
    slug = Text()
    name = Text()
    time_zone = Text()
    locale = Text(default="en")
    address = Text(default="")
    on_duty_phone = Text(null=True)
    change_cutoff_minutes = Integer(default=120)
    max_changes = Integer(default=3)
    min_notice_minutes = Integer(default=60)
    slot_step_minutes = Integer(default=15)
    hold_ttl_seconds = Integer(default=600)
    reminder_offsets_minutes = Array(base_column=Integer())
    confirm_within_minutes = Integer(default=120)
    created_at = Timestamptz()


class Staff(Table, tablename="staff"):
    id = UUID(primary_key=True)
    business_id = UUID()
    name = Text()
    phone = Text(null=True)
    active = Boolean(default=True)
    created_at = Timestamptz()


class WorkingHours(Table, tablename="working_hours"):
    business_id = UUID()
    staff_id = UUID()
    weekday = SmallInt()
    opens_at = Time()
    closes_at = Time()


class TimeOff(Table, tablename="time_off"):
    id = UUID(primary_key=True)
    business_id = UUID()
    staff_id = UUID()
    starts_at = Timestamptz()
    ends_at = Timestamptz()
    reason = Text(default="")
    created_at = Timestamptz()


class Service(Table, tablename="service"):
    id = UUID(primary_key=True)
    business_id = UUID()
    name = Text()
    duration_minutes = Integer()
    buffer_before_minutes = Integer(default=0)
    buffer_after_minutes = Integer(default=0)
    price_cents = Integer(default=0)
    currency = Varchar(length=3, default="EUR")
    requires_confirmation = Boolean(default=False)
    active = Boolean(default=True)
    created_at = Timestamptz()


class ServiceStaff(Table, tablename="service_staff"):
    service_id = UUID(primary_key=True)
    staff_id = UUID()


class Customer(Table, tablename="customer"):
    id = UUID(primary_key=True)
    business_id = UUID()
    name = Text()
    phone = Text()
    locale = Text(default="en")
    sms_consent = Boolean(default=True)
    created_at = Timestamptz()
