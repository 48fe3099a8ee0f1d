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
from booking.outbox.tables import Outbox

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
)
