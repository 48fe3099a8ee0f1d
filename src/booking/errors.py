"""Typed domain errors with stable codes, and their one mapping to RFC 9457.

Clients branch on ``type`` (``/problems/<code>``), never on prose.
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "/problems/"


class DomainError(Exception):
    """A refusal the caller can act on. Never a bug."""

    code: ClassVar[str] = "bad-request"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.code

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        for key, value in self.extra.items():
            body.setdefault(key, value)
        return body


class InvalidInput(DomainError):
    code = "invalid-input"
    status = 422
    title = "The request is not valid"


class SlotNotOffered(InvalidInput):
    """A write for a slot the schedule does not offer: a member of staff or a resource the
    service cannot use (not offering it, deactivated, unknown, a room for a service that
    uses none), nobody or no member of the group it needs active, a time outside working
    hours. Bad input to our own API (422); to a marketplace that read the slot in a feed
    before the change, an unavailable slot (marketplace.service)."""


class MalformedRequest(DomainError):
    code = "malformed-request"
    status = 400
    title = "The request could not be read"


class NotFound(DomainError):
    code = "not-found"
    status = 404
    title = "Not found"


class AlreadyExists(DomainError):
    code = "already-exists"
    status = 409
    title = "That already exists"


class SlotTaken(DomainError):
    """The database rejected the time: someone else holds or booked it."""

    code = "slot-taken"
    status = 409
    title = "That time is no longer free"


class SessionFull(DomainError):
    """The group session has fewer seats left than asked (the database's CHECK said so)."""

    code = "session-full"
    status = 409
    title = "Not enough seats left in that session"


class InvalidTransition(DomainError):
    code = "invalid-transition"
    status = 409
    title = "That change is not possible in the booking's current state"


class CheckInTooEarly(DomainError):
    code = "check-in-too-early"
    status = 409
    title = "Check-in opens on the day of the appointment"


class PolicyViolation(DomainError):
    code = "change-policy"
    status = 409
    title = "The business's change policy does not allow this"


class HoldExpired(DomainError):
    code = "hold-expired"
    status = 410
    title = "The hold has expired"


class HoldTokenInvalid(DomainError):
    code = "hold-token-invalid"
    status = 403
    title = "The hold token does not match"


class VersionMismatch(DomainError):
    code = "version-mismatch"
    status = 412
    title = "The resource changed since you read it"


class PreconditionRequired(DomainError):
    code = "precondition-required"
    status = 428
    title = "If-Match is required"


class Unauthenticated(DomainError):
    code = "unauthenticated"
    status = 401
    title = "Authentication required"


class Forbidden(DomainError):
    code = "forbidden"
    status = 403
    title = "Not allowed"


class IdempotencyConflict(DomainError):
    code = "idempotency-key-reused"
    status = 422
    title = "Idempotency-Key was used with a different request"


class IdempotencyInProgress(DomainError):
    code = "idempotency-in-progress"
    status = 409
    title = "A request with this Idempotency-Key is still in progress"


class RateLimited(DomainError):
    code = "rate-limited"
    status = 429
    title = "Too many requests"


class Unavailable(DomainError):
    code = "unavailable"
    status = 503
    title = "A dependency is unavailable"
