"""Pure booking rules: the status machine and the change policy. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

ACTIVE = frozenset({"held", "pending", "confirmed", "checked_in"})

# action -> statuses it may start from, and the status it leads to
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "confirm": (frozenset({"pending"}), "confirmed"),
    "cancel": (frozenset({"pending", "confirmed"}), "cancelled"),
    "check_in": (frozenset({"pending", "confirmed"}), "checked_in"),
    "complete": (frozenset({"checked_in"}), "completed"),
    "no_show": (frozenset({"pending", "confirmed"}), "no_show"),
    "release": (frozenset({"held"}), "cancelled"),
    "expire": (frozenset({"held"}), "expired"),
}
CHANGEABLE = frozenset({"pending", "confirmed"})


def next_status(action: str, current: str) -> str | None:
    """The status ``action`` leads to from ``current``, or None if not allowed."""
    allowed_from, target = TRANSITIONS[action]
    return target if current in allowed_from else None


@dataclass(frozen=True, slots=True)
class ChangePolicy:
    cutoff: timedelta
    max_changes: int


def policy_breaches(
    policy: ChangePolicy, *, now: datetime, starts_at: datetime, change_count: int
) -> list[str]:
    """Why the change policy forbids a change now (empty when it allows it)."""
    reasons: list[str] = []
    if now > starts_at - policy.cutoff:
        hours = policy.cutoff.total_seconds() / 3600
        reasons.append(f"changes close {hours:g} h before the appointment")
    if change_count >= policy.max_changes:
        reasons.append(f"a booking can be changed at most {policy.max_changes} times")
    return reasons
