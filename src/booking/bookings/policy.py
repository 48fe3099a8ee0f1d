"""The business's change policy: the ONE place that decides whether a booking may be
created at a time, changed or cancelled by a given actor. Pure: no I/O.

Public API (everything else here is private):

* :class:`BusinessPolicy` - the business's rules (cut-off before the start, maximum
  number of changes, minimum notice). :data:`POLICY_COLUMNS` is the SQL select list
  that reads them from ``business b``; :meth:`BusinessPolicy.from_row` turns such a
  row into the policy. The one reader is ``booking.bookings.checks.load_policy``.
* :class:`BookingFacts` - what the policy needs to know about a booking;
  :meth:`BookingFacts.from_row` reads it from a row of ``store.BOOKING_COLUMNS``.
* :func:`actor_of` - the actor kind (customer, app, partner, front_desk, manager,
  system) of a caller's kind and role.
* :class:`Exemption` - an explicit, recorded waiver for paths the business itself
  started (the self-service page acting on the business's behalf, reschedule offers,
  the waitlist). Never skip the policy: pass one of these instead.
* :func:`check_changeable` - the status part of a change alone (before the policy is
  read; also for joining the waitlist).
* :func:`decide_new_booking`, :func:`decide_change`, :func:`decide_cancel` - return a
  :class:`Decision`: ``allowed``, ``needs_override`` (staff may go ahead by giving a
  reason) or ``refused``, with the :class:`Breach` es found.
* :meth:`Decision.enforce` raises the API's errors (PolicyViolation, InvalidInput,
  InvalidTransition) for a decision that is not allowed; :attr:`Decision.policy_override`
  and :meth:`Decision.history_reason` are what the history row records.

Adding a rule: add its field to :class:`BusinessPolicy` (and its column to
``POLICY_COLUMNS`` + a migration when it is stored), its check to ``_policy_breaches``
(or the decide function it belongs to), and its tests to tests/unit/test_policy.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from booking.bookings.status import CHANGEABLE
from booking.errors import InvalidInput, InvalidTransition, PolicyViolation

Actor = Literal["customer", "app", "partner", "front_desk", "manager", "system"]
Outcome = Literal["allowed", "needs_override", "refused"]
Operation = Literal["book", "change", "cancel"]

# Who the policy binds, per operation. Staff (front desk, manager) may override a
# change with a reason; their cancellations after the cut-off are recorded as overrides.
STAFF: frozenset[Actor] = frozenset({"front_desk", "manager"})
_CANCEL_BOUND: frozenset[Actor] = frozenset({"customer", "app", "partner"})

POLICY_COLUMNS = "b.change_cutoff_minutes, b.max_changes, b.min_notice_minutes"


@dataclass(frozen=True, slots=True)
class BusinessPolicy:
    cutoff: timedelta  # changes and cancellations close this long before the start
    max_changes: int  # a booking may be changed at most this many times
    min_notice: timedelta  # a new time must be at least this far ahead (not for staff)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> BusinessPolicy:
        """The policy from a row that selected :data:`POLICY_COLUMNS`."""
        return cls(
            cutoff=timedelta(minutes=row["change_cutoff_minutes"]),
            max_changes=row["max_changes"],
            min_notice=timedelta(minutes=row["min_notice_minutes"]),
        )


@dataclass(frozen=True, slots=True)
class BookingFacts:
    starts_at: datetime
    change_count: int
    status: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> BookingFacts:
        """The facts from a booking row (``booking.bookings.store.BOOKING_COLUMNS``)."""
        return cls(row["starts_at"], row["change_count"], row["status"])


@dataclass(frozen=True, slots=True)
class Exemption:
    """Why a path the business started may pass the policy; recorded in the history."""

    reason: str

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise ValueError("an exemption needs a reason")


@dataclass(frozen=True, slots=True)
class Breach:
    # "status", "started", "past": the booking or time itself (nobody overrides these);
    # "cutoff", "max_changes", "notice": the business's policy.
    code: str
    message: str


_FIXED = frozenset({"status", "started", "past"})


@dataclass(frozen=True, slots=True)
class Decision:
    operation: Operation
    outcome: Outcome
    breaches: tuple[Breach, ...] = ()
    override_reason: str | None = None  # staff's reason, when they overrode
    exemption: Exemption | None = None  # the exemption, when it waived a breach
    status: str | None = None  # the booking's status (for the error)
    cutoff: timedelta | None = None  # the policy's cut-off (for the cancel message)

    @property
    def allowed(self) -> bool:
        return self.outcome == "allowed"

    @property
    def policy_override(self) -> bool:
        """Whether this allowed decision waived a breach (the history's policy_override)."""
        return self.allowed and bool(self.breaches)

    def history_reason(self, reason: str | None = None) -> str | None:
        """The history row's reason: the caller's own ``reason`` plus what was waived."""
        if not self.policy_override:
            return reason
        if self.exemption is not None:
            waived = f"policy exemption: {self.exemption.reason}"
        else:
            waived = self.override_reason or "staff override"
        return waived if reason in (None, waived) else f"{reason}; {waived}"

    def enforce(self) -> Decision:
        """Raise the API's error unless allowed; return self when allowed."""
        if self.allowed:
            return self
        first = self.breaches[0]
        if first.code in ("status", "started"):
            extra = {"booking_status": self.status} if first.code == "status" else {}
            raise InvalidTransition(first.message, **extra)
        if first.code in ("past", "notice"):
            raise InvalidInput(first.message, field="starts_at")
        messages = [breach.message for breach in self.breaches]
        joined = "; ".join(messages)
        if self.operation == "cancel":
            assert self.cutoff is not None
            raise PolicyViolation(
                f"Cancellations close {_hours(self.cutoff)} h before the appointment; "
                "please contact the business.",
                breaches=messages,
            )
        if self.outcome == "needs_override":
            raise PolicyViolation(
                f"This change breaks the change policy ({joined}); "
                "staff may override it by giving override_reason.",
                breaches=messages,
            )
        raise PolicyViolation(
            f"The change policy does not allow this: {joined}.", breaches=messages
        )


_PLAIN_ACTORS: dict[str, Actor] = {
    "customer": "customer",
    "app": "app",
    "partner": "partner",
    "system": "system",
}


def actor_of(kind: str, role: str | None = None) -> Actor:
    """The actor kind of a caller (``Principal.kind`` and ``role``)."""
    if kind == "admin" or (kind == "staff" and role == "manager"):
        return "manager"
    if kind == "staff":
        return "front_desk"
    try:
        return _PLAIN_ACTORS[kind]
    except KeyError:
        raise ValueError(f"unknown caller kind {kind!r}") from None


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:g}"


def _time_breach(
    min_notice: timedelta, *, actor: Actor, now: datetime, starts_at: datetime
) -> Breach | None:
    if starts_at <= now:
        return Breach("past", "That time is in the past.")
    if actor not in STAFF and starts_at < now + min_notice:
        minutes = min_notice // timedelta(minutes=1)
        return Breach("notice", f"Bookings need at least {minutes} minutes' notice.")
    return None


def decide_new_booking(
    min_notice: timedelta,
    *,
    actor: Actor,
    now: datetime,
    starts_at: datetime,
    exemption: Exemption | None = None,
) -> Decision:
    """May ``actor`` book (or hold) a time starting at ``starts_at``?

    Takes the minimum notice alone: a new booking's rules shape the availability
    search too (it hides times inside the notice), so their inputs arrive with the
    service context (``ServiceContext.min_notice``), read in the same round trip.
    """
    breach = _time_breach(min_notice, actor=actor, now=now, starts_at=starts_at)
    if breach is None:
        return Decision("book", "allowed")
    if breach.code == "notice" and exemption is not None:
        return Decision("book", "allowed", (breach,), exemption=exemption)
    return Decision("book", "refused", (breach,))


def _policy_breaches(
    policy: BusinessPolicy, booking: BookingFacts, *, now: datetime
) -> list[Breach]:
    """Where the business's change policy forbids changing ``booking`` now."""
    breaches: list[Breach] = []
    if now > booking.starts_at - policy.cutoff:
        breaches.append(
            Breach("cutoff", f"changes close {_hours(policy.cutoff)} h before the appointment")
        )
    if booking.change_count >= policy.max_changes:
        breaches.append(
            Breach("max_changes", f"a booking can be changed at most {policy.max_changes} times")
        )
    return breaches


def _waive(
    breaches: list[Breach],
    *,
    actor: Actor,
    override_reason: str | None,
    exemption: Exemption | None,
    status: str,
    cutoff: timedelta,
) -> Decision:
    found = tuple(breaches)
    if not found:
        return Decision("change", "allowed", status=status)
    if exemption is not None:
        return Decision("change", "allowed", found, exemption=exemption, status=status)
    reason = override_reason.strip() if override_reason else ""
    if actor in STAFF and reason:
        return Decision("change", "allowed", found, override_reason=reason, status=status)
    outcome: Outcome = "needs_override" if actor in STAFF else "refused"
    return Decision("change", outcome, found, status=status, cutoff=cutoff)


def check_changeable(status: str, doing: str = "be changed") -> Decision:
    """Whether a booking in ``status`` may be moved at all (before reading any policy):
    refused with "A <status> booking cannot <doing>." unless pending or confirmed."""
    if status in CHANGEABLE:
        return Decision("change", "allowed", status=status)
    breach = Breach("status", f"A {status} booking cannot {doing}.")
    return Decision("change", "refused", (breach,), status=status)


def decide_change(
    policy: BusinessPolicy,
    booking: BookingFacts,
    *,
    actor: Actor,
    now: datetime,
    new_starts_at: datetime | None = None,
    override_reason: str | None = None,
    exemption: Exemption | None = None,
) -> Decision:
    """May ``actor`` move ``booking`` (to ``new_starts_at``, or keep its time)?

    Checked in this order, the first kind found decides: the status; the business's
    policy (cut-off, number of changes), which staff may override by giving
    ``override_reason`` and an ``exemption`` waives; the new time (not in the past,
    minimum notice for non-staff; the exemption waives notice) or, keeping the time,
    that the appointment has not started.
    """
    status = booking.status
    by_status = check_changeable(status)
    if not by_status.allowed:
        return by_status
    waived = _waive(
        _policy_breaches(policy, booking, now=now),
        actor=actor,
        override_reason=override_reason,
        exemption=exemption,
        status=status,
        cutoff=policy.cutoff,
    )
    if not waived.allowed:
        return waived
    target = booking.starts_at if new_starts_at is None else new_starts_at
    if target == booking.starts_at:
        if target <= now:
            breach = Breach("started", "The appointment has already started; it cannot be moved.")
            return Decision("change", "refused", (breach,), status=status)
        return waived
    time_breach = _time_breach(policy.min_notice, actor=actor, now=now, starts_at=target)
    if time_breach is None:
        return waived
    if time_breach.code == "notice" and exemption is not None:
        return Decision(
            "change", "allowed", (*waived.breaches, time_breach), exemption=exemption, status=status
        )
    return Decision("change", "refused", (time_breach,), status=status)


def decide_cancel(
    policy: BusinessPolicy,
    booking: BookingFacts,
    *,
    actor: Actor,
    now: datetime,
    override_reason: str | None = None,
    exemption: Exemption | None = None,
) -> Decision:
    """May ``actor`` cancel ``booking`` now (its status allowing a cancel)?

    Customers, apps and partners are bound by the cut-off; staff cancelling after it
    is recorded as an override (with their reason, when given); the system (hold
    release, the guarantee's own machinery) is not bound.
    """
    status = booking.status
    if actor == "system" or now <= booking.starts_at - policy.cutoff:
        return Decision("cancel", "allowed", status=status)
    breach = Breach(
        "cutoff", f"cancellations close {_hours(policy.cutoff)} h before the appointment"
    )
    if actor in STAFF:
        reason = override_reason.strip() if override_reason else ""
        return Decision(
            "cancel",
            "allowed",
            (breach,),
            override_reason=reason or None,
            exemption=exemption,
            status=status,
        )
    if exemption is not None:
        return Decision("cancel", "allowed", (breach,), exemption=exemption, status=status)
    return Decision("cancel", "refused", (breach,), status=status, cutoff=policy.cutoff)
