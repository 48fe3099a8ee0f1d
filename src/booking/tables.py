"""Every Piccolo table of the app, for the app registry."""

from piccolo.table import Table

from booking.access.tables import ApiKey, Partner
from booking.bookings.tables import Booking, BookingHistory
from booking.catalog.tables import (
    Business,
    Customer,
    Service,
    ServiceStaff,
    Staff,
    TimeOff,
    WorkingHours,
)
from booking.guarantee.tables import (
    FreedSlot,
    Promise,
    RescheduleOffer,
    RescheduleOption,
    WaitlistEntry,
)
from booking.idempotency.tables import IdempotencyRecord
from booking.notifications.tables import InboundMessage, Message, Reminder
from booking.outbox.tables import Outbox
from booking.webhooks.tables import WebhookAttempt, WebhookDelivery, WebhookEndpoint

ALL_TABLES: tuple[type[Table], ...] = (
    Business,
    Staff,
    WorkingHours,
    TimeOff,
    Service,
    ServiceStaff,
    Customer,
    Booking,
    BookingHistory,
    Outbox,
    Partner,
    ApiKey,
    Message,
    Reminder,
    InboundMessage,
    IdempotencyRecord,
    WebhookEndpoint,
    WebhookDelivery,
    WebhookAttempt,
    FreedSlot,
    WaitlistEntry,
    RescheduleOffer,
    RescheduleOption,
    Promise,
)
