"""The booking status machine: every status, which ones are active, and the allowed moves.

Pure (no I/O, no imports from the app); the one place these sets are spelled.

* :data:`STATUSES` - every status a booking can have.
* :data:`ACTIVE` - statuses that occupy time (the exclusion constraint's ``WHERE``
  clause and the busy-time reads say the same thing in SQL: :data:`ACTIVE_SQL`).
* :data:`CHANGEABLE` - statuses from which a booking may be moved (time, staff,
  service), join a waitlist or accept an offer.
* :data:`TRANSITIONS` and :func:`next_status` - which action leads where.
"""

from __future__ import annotations

STATUSES: tuple[str, ...] = (
    "held",
    "pending",
    "confirmed",
    "checked_in",
    "completed",
    "cancelled",
    "no_show",
    "expired",
)
ACTIVE = frozenset({"held", "pending", "confirmed", "checked_in"})
# The same set for SQL text: "status IN ({ACTIVE_SQL})".
ACTIVE_SQL = ", ".join(f"'{status}'" for status in STATUSES if status in ACTIVE)
CHANGEABLE = frozenset({"pending", "confirmed"})
FINAL = frozenset({"completed", "cancelled", "no_show", "expired"})

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


def next_status(action: str, current: str) -> str | None:
    """The status ``action`` leads to from ``current``, or None if not allowed.

    An unknown action raises KeyError (a programming error, not bad input).
    """
    allowed_from, target = TRANSITIONS[action]
    return target if current in allowed_from else None


def is_changeable(status: str) -> bool:
    """Whether a booking in ``status`` may be moved to another time, staff or service."""
    return status in CHANGEABLE
