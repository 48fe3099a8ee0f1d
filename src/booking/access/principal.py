"""Who is calling, and what they may do. One place answers every "may I?"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

from booking.errors import Forbidden, NotFound

PrincipalKind = Literal["admin", "staff", "partner", "app", "customer", "system"]

# Scopes a key can carry. Staff and admin keys imply all of them for their businesses.
SCOPES = frozenset(
    {
        "availability:read",
        "bookings:read",
        "bookings:read_all",  # partner: see bookings made by others too
        "bookings:write",  # create holds and bookings
        "bookings:change",
        "bookings:cancel",
        "webhooks:manage",
    }
)
APP_DEFAULT_SCOPES = frozenset({"availability:read", "bookings:write"})
STAFF_ROLES = ("front_desk", "manager")
CHANNEL_BY_KIND: dict[str, str] = {
    "admin": "front_desk",
    "staff": "front_desk",
    "partner": "partner",
    "app": "web",
    "customer": "web",
    "system": "system",
}


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    id: str
    role: str | None = None
    business_ids: frozenset[UUID] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)
    partner_id: UUID | None = None
    booking_id: UUID | None = None  # customer tokens act on one booking only
    rate_limit: int | None = None  # requests per minute for this key; None = the default

    @property
    def is_staff(self) -> bool:
        return self.kind in ("staff", "admin")

    @property
    def is_manager(self) -> bool:
        return self.kind == "admin" or (self.kind == "staff" and self.role == "manager")

    @property
    def default_channel(self) -> str:
        return CHANNEL_BY_KIND[self.kind]

    @property
    def actor_label(self) -> str:
        return f"{self.kind}:{self.id}"

    def sees_business(self, business_id: UUID) -> bool:
        return self.kind in ("admin", "system") or business_id in self.business_ids

    def has_scope(self, scope: str) -> bool:
        if self.kind in ("admin", "system", "staff"):
            return True
        return scope in self.scopes

    def require_business(self, business_id: UUID) -> None:
        """Another tenant's business looks exactly like a missing one."""
        if not self.sees_business(business_id):
            raise NotFound("No such business.")

    def require(self, scope: str, business_id: UUID) -> None:
        self.require_business(business_id)
        self.require_scope(scope)

    def require_scope(self, scope: str) -> None:
        """The scope alone: checked before a row is looked up by id, so the answer cannot
        depend on whether the id exists."""
        if self.kind == "customer":
            raise Forbidden("A booking link cannot do this.")
        if not self.has_scope(scope):
            raise Forbidden(f"This key lacks the scope {scope!r}.")

    def may_use_hold(self, business_id: UUID, partner_id: UUID | None) -> bool:
        """A hold in a business the caller sees; a partner's only if it made it (unless it
        reads all bookings). Its token is what lets the caller confirm or release it."""
        if not self.sees_business(business_id):
            return False
        if self.kind == "partner" and not self.has_scope("bookings:read_all"):
            return partner_id is not None and partner_id == self.partner_id
        return True

    @property
    def rate_limit_subject(self) -> str:
        """What the rate limiter counts: one API key, or one booking link."""
        return self.actor_label

    def require_manager(self, business_id: UUID) -> None:
        self.require_business(business_id)
        if not self.is_manager:
            raise Forbidden("Only a manager may do this.")

    def may_see_booking(self, business_id: UUID, booking_id: UUID, partner_id: UUID | None) -> bool:
        if self.kind == "customer":
            return self.booking_id == booking_id
        if not self.sees_business(business_id):
            return False
        if self.kind == "partner" and not self.has_scope("bookings:read_all"):
            return partner_id is not None and partner_id == self.partner_id
        return self.kind != "app"


SYSTEM = Principal(kind="system", id="system")


def booking_customer(booking_id: UUID, business_id: UUID) -> Principal:
    """The customer of one booking, as their booking link (or SMS reply) acts."""
    return Principal(
        kind="customer",
        id=booking_id.hex,
        business_ids=frozenset({business_id}),
        booking_id=booking_id,
    )
