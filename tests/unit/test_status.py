"""The status machine, every transition: pure, no server."""

from __future__ import annotations

import itertools

import pytest

from booking.bookings.status import (
    ACTIVE,
    ACTIVE_SQL,
    CHANGEABLE,
    FINAL,
    STATUSES,
    TRANSITIONS,
    is_changeable,
    next_status,
)

# The whole machine written out once more, by hand: (action, from) -> to.
ALLOWED = {
    ("confirm", "pending"): "confirmed",
    ("cancel", "pending"): "cancelled",
    ("cancel", "confirmed"): "cancelled",
    ("check_in", "pending"): "checked_in",
    ("check_in", "confirmed"): "checked_in",
    ("complete", "checked_in"): "completed",
    ("no_show", "pending"): "no_show",
    ("no_show", "confirmed"): "no_show",
    ("release", "held"): "cancelled",
    ("expire", "held"): "expired",
}
ACTIONS = ("confirm", "cancel", "check_in", "complete", "no_show", "release", "expire")


def test_statuses_are_spelled_once_in_order() -> None:
    assert STATUSES == (
        "held",
        "pending",
        "confirmed",
        "checked_in",
        "completed",
        "cancelled",
        "no_show",
        "expired",
    )
    assert frozenset({"held", "pending", "confirmed", "checked_in"}) == ACTIVE
    assert frozenset({"pending", "confirmed"}) == CHANGEABLE
    assert frozenset({"completed", "cancelled", "no_show", "expired"}) == FINAL
    assert set(STATUSES) == ACTIVE | FINAL
    assert not ACTIVE & FINAL


def test_active_sql_lists_the_active_statuses() -> None:
    assert ACTIVE_SQL == "'held', 'pending', 'confirmed', 'checked_in'"


def test_the_machine_knows_exactly_these_actions() -> None:
    assert tuple(TRANSITIONS) == ACTIONS


@pytest.mark.parametrize(("action", "current"), list(itertools.product(ACTIONS, STATUSES)))
def test_every_transition_allowed_or_refused(action: str, current: str) -> None:
    assert next_status(action, current) == ALLOWED.get((action, current))


def test_final_statuses_lead_nowhere() -> None:
    for action, current in itertools.product(ACTIONS, FINAL):
        assert next_status(action, current) is None


def test_unknown_action_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        next_status("teleport", "pending")


@pytest.mark.parametrize("status", STATUSES)
def test_changeable(status: str) -> None:
    assert is_changeable(status) is (status in ("pending", "confirmed"))
