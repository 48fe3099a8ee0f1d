"""The change policy as pure decisions: every breach, the boundaries, each actor,
overrides and exemptions, and the errors a refusal becomes. No server."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from booking.bookings.policy import (
    POLICY_COLUMNS,
    STAFF,
    Actor,
    BookingFacts,
    Breach,
    BusinessPolicy,
    Decision,
    Exemption,
    actor_of,
    check_changeable,
    decide_cancel,
    decide_change,
    decide_new_booking,
)
from booking.errors import InvalidInput, InvalidTransition, PolicyViolation

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
POLICY = BusinessPolicy(
    cutoff=timedelta(minutes=120), max_changes=3, min_notice=timedelta(minutes=90)
)
ALL_ACTORS: tuple[Actor, ...] = ("customer", "app", "partner", "front_desk", "manager", "system")
BOUND: tuple[Actor, ...] = ("customer", "app", "partner", "system")  # by the change policy
CUTOFF_MSG = "changes close 2 h before the appointment"
MAX_MSG = "a booking can be changed at most 3 times"
CUTOFF = Breach("cutoff", CUTOFF_MSG)
MAX = Breach("max_changes", MAX_MSG)
NOTICE = Breach("notice", "Bookings need at least 90 minutes' notice.")
PAST = Breach("past", "That time is in the past.")
CANCEL_CUTOFF = Breach("cutoff", "cancellations close 2 h before the appointment")
LOST_SLOT = Exemption("lost-slot offer accepted")


def booking(
    starts_in: timedelta = timedelta(days=1), changes: int = 0, status: str = "confirmed"
) -> BookingFacts:
    return BookingFacts(starts_at=NOW + starts_in, change_count=changes, status=status)


def problem(error: pytest.ExceptionInfo[Exception]) -> dict[str, object]:
    assert isinstance(error.value, InvalidInput | InvalidTransition | PolicyViolation)
    return error.value.to_problem()


# --- the business's policy and where it is read --------------------------------------


def test_from_row_reads_every_policy_column() -> None:
    columns = re.findall(r"b\.(\w+)", POLICY_COLUMNS)
    assert columns == ["change_cutoff_minutes", "max_changes", "min_notice_minutes"]
    assert ", ".join(f"b.{column}" for column in columns) == POLICY_COLUMNS
    row = dict(zip(columns, (45, 2, 30), strict=True))
    assert BusinessPolicy.from_row(row) == BusinessPolicy(
        cutoff=timedelta(minutes=45), max_changes=2, min_notice=timedelta(minutes=30)
    )


def test_booking_facts_from_a_booking_row() -> None:
    row = {"starts_at": NOW, "change_count": 2, "status": "pending", "notes": "ignored"}
    assert BookingFacts.from_row(row) == BookingFacts(NOW, 2, "pending")


# --- actors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "role", "actor"),
    [
        ("customer", None, "customer"),
        ("app", None, "app"),
        ("partner", None, "partner"),
        ("system", None, "system"),
        ("staff", "front_desk", "front_desk"),
        ("staff", None, "front_desk"),
        ("staff", "manager", "manager"),
        ("admin", None, "manager"),
        ("admin", "front_desk", "manager"),
        ("customer", "manager", "customer"),
    ],
)
def test_actor_of(kind: str, role: str | None, actor: str) -> None:
    assert actor_of(kind, role) == actor


def test_actor_of_defaults_to_no_role() -> None:
    assert actor_of("staff") == "front_desk"


def test_actor_of_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match=r"^unknown caller kind 'robot'$") as error:
        actor_of("robot")
    assert error.value.__cause__ is None
    assert error.value.__suppress_context__


def test_staff_are_front_desk_and_managers() -> None:
    assert frozenset({"front_desk", "manager"}) == STAFF


# --- exemptions --------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_exemption_needs_a_reason(reason: str) -> None:
    with pytest.raises(ValueError, match=r"^an exemption needs a reason$"):
        Exemption(reason)


def test_an_exemption_keeps_its_reason() -> None:
    assert Exemption(" waitlist ").reason == " waitlist "


# --- change: the business's policy ---------------------------------------------------


@pytest.mark.parametrize("actor", ALL_ACTORS)
def test_change_well_before_the_cutoff_is_allowed_for_everyone(actor: Actor) -> None:
    decision = decide_change(POLICY, booking(), actor=actor, now=NOW)
    assert decision == Decision("change", "allowed", status="confirmed")
    assert decision.allowed
    assert not decision.policy_override
    assert decision.history_reason() is None
    assert decision.history_reason("why") == "why"
    assert decision.enforce() is decision


def test_change_exactly_at_the_cutoff_is_allowed() -> None:
    decision = decide_change(POLICY, booking(timedelta(minutes=120)), actor="customer", now=NOW)
    assert decision == Decision("change", "allowed", status="confirmed")


def test_change_just_after_the_cutoff_is_refused() -> None:
    late = booking(timedelta(minutes=120) - US)
    decision = decide_change(POLICY, late, actor="customer", now=NOW)
    assert decision == Decision(
        "change", "refused", (CUTOFF,), status="confirmed", cutoff=POLICY.cutoff
    )
    assert not decision.allowed
    assert not decision.policy_override


def test_one_change_below_the_maximum_is_allowed() -> None:
    decision = decide_change(POLICY, booking(changes=2), actor="customer", now=NOW)
    assert decision.allowed


def test_change_at_the_maximum_is_refused() -> None:
    decision = decide_change(POLICY, booking(changes=3), actor="partner", now=NOW)
    assert decision == Decision(
        "change", "refused", (MAX,), status="confirmed", cutoff=POLICY.cutoff
    )


def test_both_breaches_are_reported_in_order() -> None:
    decision = decide_change(
        POLICY, booking(timedelta(minutes=30), changes=4), actor="app", now=NOW
    )
    assert decision.outcome == "refused"
    assert decision.breaches == (CUTOFF, MAX)


def test_cutoff_hours_are_shown_with_fractions() -> None:
    policy = BusinessPolicy(timedelta(minutes=90), 5, timedelta(0))
    decision = decide_change(policy, booking(timedelta(minutes=60)), actor="customer", now=NOW)
    assert decision.breaches == (Breach("cutoff", "changes close 1.5 h before the appointment"),)


@pytest.mark.parametrize("actor", BOUND)
def test_bound_actors_cannot_override(actor: Actor) -> None:
    decision = decide_change(
        POLICY, booking(changes=3), actor=actor, now=NOW, override_reason="please"
    )
    assert decision.outcome == "refused"
    with pytest.raises(PolicyViolation) as error:
        decision.enforce()
    assert problem(error) == {
        "type": "/problems/change-policy",
        "title": "The business's change policy does not allow this",
        "status": 409,
        "detail": f"The change policy does not allow this: {MAX_MSG}.",
        "breaches": [MAX_MSG],
    }


def test_refusal_joins_every_breach() -> None:
    decision = decide_change(
        POLICY, booking(timedelta(minutes=30), changes=3), actor="customer", now=NOW
    )
    with pytest.raises(PolicyViolation) as error:
        decision.enforce()
    assert error.value.detail == (
        f"The change policy does not allow this: {CUTOFF_MSG}; {MAX_MSG}."
    )
    assert error.value.extra == {"breaches": [CUTOFF_MSG, MAX_MSG]}


@pytest.mark.parametrize("actor", ["front_desk", "manager"])
@pytest.mark.parametrize("reason", [None, "", "  "])
def test_staff_need_a_reason_to_override(actor: Actor, reason: str | None) -> None:
    decision = decide_change(
        POLICY, booking(timedelta(minutes=30)), actor=actor, now=NOW, override_reason=reason
    )
    assert decision == Decision(
        "change", "needs_override", (CUTOFF,), status="confirmed", cutoff=POLICY.cutoff
    )
    assert not decision.allowed
    assert not decision.policy_override
    with pytest.raises(PolicyViolation) as error:
        decision.enforce()
    assert problem(error) == {
        "type": "/problems/change-policy",
        "title": "The business's change policy does not allow this",
        "status": 409,
        "detail": f"This change breaks the change policy ({CUTOFF_MSG}); "
        "staff may override it by giving override_reason.",
        "breaches": [CUTOFF_MSG],
    }


def test_needs_override_joins_every_breach() -> None:
    decision = decide_change(
        POLICY, booking(timedelta(minutes=30), changes=3), actor="manager", now=NOW
    )
    with pytest.raises(PolicyViolation) as error:
        decision.enforce()
    assert error.value.detail.startswith(
        f"This change breaks the change policy ({CUTOFF_MSG}; {MAX_MSG}); "
    )


@pytest.mark.parametrize("actor", ["front_desk", "manager"])
def test_staff_override_with_a_reason_is_recorded(actor: Actor) -> None:
    decision = decide_change(
        POLICY, booking(changes=3), actor=actor, now=NOW, override_reason="  regular client "
    )
    assert decision == Decision(
        "change", "allowed", (MAX,), override_reason="regular client", status="confirmed"
    )
    assert decision.policy_override
    assert decision.history_reason() == "regular client"
    assert decision.history_reason("moved by phone") == "moved by phone; regular client"
    assert decision.enforce() is decision


def test_override_reason_without_a_breach_records_nothing() -> None:
    decision = decide_change(POLICY, booking(), actor="manager", now=NOW, override_reason="x")
    assert decision == Decision("change", "allowed", status="confirmed")
    assert decision.history_reason() is None


@pytest.mark.parametrize("actor", ALL_ACTORS)
def test_an_exemption_waives_the_policy_and_is_recorded(actor: Actor) -> None:
    decision = decide_change(
        POLICY, booking(timedelta(minutes=30), changes=3), actor=actor, now=NOW,
        exemption=LOST_SLOT,
    )  # fmt: skip
    assert decision == Decision(
        "change", "allowed", (CUTOFF, MAX), exemption=LOST_SLOT, status="confirmed"
    )
    assert decision.policy_override
    assert decision.history_reason() == "policy exemption: lost-slot offer accepted"
    assert decision.history_reason("offer option 2") == (
        "offer option 2; policy exemption: lost-slot offer accepted"
    )


def test_an_exemption_wins_over_a_staff_reason() -> None:
    decision = decide_change(
        POLICY, booking(changes=3), actor="front_desk", now=NOW, override_reason="r",
        exemption=LOST_SLOT,
    )  # fmt: skip
    assert decision.exemption == LOST_SLOT
    assert decision.override_reason is None
    assert decision.history_reason() == "policy exemption: lost-slot offer accepted"


def test_an_unused_exemption_records_nothing() -> None:
    decision = decide_change(POLICY, booking(), actor="customer", now=NOW, exemption=LOST_SLOT)
    assert decision == Decision("change", "allowed", status="confirmed")
    assert not decision.policy_override
    assert decision.history_reason("r") == "r"


def test_history_reason_of_an_override_without_its_reason() -> None:
    decision = Decision("cancel", "allowed", (CANCEL_CUTOFF,))
    assert decision.history_reason() == "staff override"
    assert decision.history_reason("ill") == "ill; staff override"


def test_history_reason_of_a_refusal_is_the_callers() -> None:
    decision = Decision("change", "refused", (CUTOFF,), override_reason="x", exemption=LOST_SLOT)
    assert not decision.policy_override
    assert decision.history_reason("r") == "r"


# --- change: status and time ----------------------------------------------------------


@pytest.mark.parametrize(
    "status", ["held", "checked_in", "completed", "cancelled", "no_show", "expired"]
)
def test_only_pending_and_confirmed_bookings_change(status: str) -> None:
    decision = decide_change(
        POLICY, booking(status=status), actor="manager", now=NOW, override_reason="r",
        exemption=LOST_SLOT,
    )  # fmt: skip
    breach = Breach("status", f"A {status} booking cannot be changed.")
    assert decision == Decision("change", "refused", (breach,), status=status)
    with pytest.raises(InvalidTransition) as error:
        decision.enforce()
    assert problem(error) == {
        "type": "/problems/invalid-transition",
        "title": "That change is not possible in the booking's current state",
        "status": 409,
        "detail": f"A {status} booking cannot be changed.",
        "booking_status": status,
    }


@pytest.mark.parametrize("status", ["pending", "confirmed"])
def test_check_changeable_allows(status: str) -> None:
    assert check_changeable(status) == Decision("change", "allowed", status=status)


def test_check_changeable_says_what_cannot_be_done() -> None:
    decision = check_changeable("cancelled", "join the waitlist")
    breach = Breach("status", "A cancelled booking cannot join the waitlist.")
    assert decision == Decision("change", "refused", (breach,), status="cancelled")
    assert check_changeable("held").breaches == (
        Breach("status", "A held booking cannot be changed."),
    )


def test_a_pending_booking_changes() -> None:
    assert decide_change(POLICY, booking(status="pending"), actor="customer", now=NOW).allowed


@pytest.mark.parametrize("started", [timedelta(0), -timedelta(minutes=5)])
def test_a_started_appointment_cannot_keep_its_time(started: timedelta) -> None:
    decision = decide_change(
        POLICY, booking(started), actor="manager", now=NOW, override_reason="r"
    )
    breach = Breach("started", "The appointment has already started; it cannot be moved.")
    assert decision == Decision("change", "refused", (breach,), status="confirmed")
    with pytest.raises(InvalidTransition) as error:
        decision.enforce()
    assert problem(error) == {
        "type": "/problems/invalid-transition",
        "title": "That change is not possible in the booking's current state",
        "status": 409,
        "detail": "The appointment has already started; it cannot be moved.",
    }


def test_keeping_the_time_just_before_the_start_is_allowed_with_an_override() -> None:
    soon = booking(US)
    decision = decide_change(
        POLICY, soon, actor="front_desk", now=NOW, new_starts_at=soon.starts_at,
        override_reason="staff swap",
    )  # fmt: skip
    assert decision == Decision(
        "change", "allowed", (CUTOFF,), override_reason="staff swap", status="confirmed"
    )


@pytest.mark.parametrize("actor", BOUND)
def test_a_new_time_needs_the_minimum_notice(actor: Actor) -> None:
    exact = NOW + POLICY.min_notice
    assert decide_change(POLICY, booking(), actor=actor, now=NOW, new_starts_at=exact).allowed
    decision = decide_change(POLICY, booking(), actor=actor, now=NOW, new_starts_at=exact - US)
    assert decision == Decision("change", "refused", (NOTICE,), status="confirmed")
    with pytest.raises(InvalidInput) as error:
        decision.enforce()
    assert problem(error) == {
        "type": "/problems/invalid-input",
        "title": "The request is not valid",
        "status": 422,
        "detail": "Bookings need at least 90 minutes' notice.",
        "field": "starts_at",
    }


@pytest.mark.parametrize("actor", ["front_desk", "manager"])
def test_staff_need_no_notice(actor: Actor) -> None:
    decision = decide_change(POLICY, booking(), actor=actor, now=NOW, new_starts_at=NOW + US)
    assert decision == Decision("change", "allowed", status="confirmed")


@pytest.mark.parametrize("actor", ALL_ACTORS)
@pytest.mark.parametrize("when", [timedelta(0), -timedelta(hours=1)])
def test_nobody_moves_a_booking_into_the_past(actor: Actor, when: timedelta) -> None:
    decision = decide_change(
        POLICY, booking(), actor=actor, now=NOW, new_starts_at=NOW + when, exemption=LOST_SLOT
    )
    assert decision == Decision("change", "refused", (PAST,), status="confirmed")
    with pytest.raises(InvalidInput) as error:
        decision.enforce()
    assert error.value.detail == "That time is in the past."
    assert error.value.extra == {"field": "starts_at"}


def test_notice_minutes_are_whole_minutes() -> None:
    policy = BusinessPolicy(timedelta(0), 5, timedelta(seconds=150))
    decision = decide_change(
        policy, booking(), actor="customer", now=NOW, new_starts_at=NOW + timedelta(minutes=2)
    )
    assert decision.breaches == (Breach("notice", "Bookings need at least 2 minutes' notice."),)


def test_an_exemption_waives_the_notice_too() -> None:
    decision = decide_change(
        POLICY, booking(), actor="system", now=NOW, new_starts_at=NOW + timedelta(minutes=5),
        exemption=LOST_SLOT,
    )  # fmt: skip
    assert decision == Decision(
        "change", "allowed", (NOTICE,), exemption=LOST_SLOT, status="confirmed"
    )
    assert decision.policy_override


def test_an_exemption_collects_every_waived_breach() -> None:
    decision = decide_change(
        POLICY, booking(timedelta(minutes=30)), actor="customer", now=NOW,
        new_starts_at=NOW + timedelta(minutes=5), exemption=LOST_SLOT,
    )  # fmt: skip
    assert decision == Decision(
        "change", "allowed", (CUTOFF, NOTICE), exemption=LOST_SLOT, status="confirmed"
    )


def test_a_policy_refusal_comes_before_the_notice() -> None:
    decision = decide_change(
        POLICY, booking(changes=3), actor="customer", now=NOW,
        new_starts_at=NOW + timedelta(minutes=5),
    )  # fmt: skip
    assert decision.breaches == (MAX,)


def test_an_override_does_not_waive_the_past() -> None:
    decision = decide_change(
        POLICY, booking(changes=3), actor="manager", now=NOW, new_starts_at=NOW,
        override_reason="r",
    )  # fmt: skip
    assert decision == Decision("change", "refused", (PAST,), status="confirmed")


def test_moving_to_a_later_time_with_enough_notice() -> None:
    decision = decide_change(
        POLICY, booking(), actor="customer", now=NOW, new_starts_at=NOW + timedelta(days=3)
    )
    assert decision == Decision("change", "allowed", status="confirmed")


# --- new bookings ----------------------------------------------------------------------


@pytest.mark.parametrize("actor", BOUND)
def test_new_booking_notice_boundary(actor: Actor) -> None:
    exact = NOW + POLICY.min_notice
    assert decide_new_booking(POLICY.min_notice, actor=actor, now=NOW, starts_at=exact) == Decision(
        "book", "allowed"
    )
    decision = decide_new_booking(POLICY.min_notice, actor=actor, now=NOW, starts_at=exact - US)
    assert decision == Decision("book", "refused", (NOTICE,))
    with pytest.raises(InvalidInput, match=r"^Bookings need at least 90 minutes' notice\.$"):
        decision.enforce()


@pytest.mark.parametrize("actor", ["front_desk", "manager"])
def test_staff_book_at_short_notice(actor: Actor) -> None:
    assert decide_new_booking(POLICY.min_notice, actor=actor, now=NOW, starts_at=NOW + US).allowed


@pytest.mark.parametrize("actor", ALL_ACTORS)
def test_nobody_books_in_the_past(actor: Actor) -> None:
    decision = decide_new_booking(
        POLICY.min_notice, actor=actor, now=NOW, starts_at=NOW, exemption=LOST_SLOT
    )
    assert decision == Decision("book", "refused", (PAST,))
    with pytest.raises(InvalidInput, match=r"^That time is in the past\.$"):
        decision.enforce()


def test_an_exemption_waives_a_new_bookings_notice() -> None:
    decision = decide_new_booking(
        POLICY.min_notice, actor="system", now=NOW, starts_at=NOW + US, exemption=LOST_SLOT
    )
    assert decision == Decision("book", "allowed", (NOTICE,), exemption=LOST_SLOT)
    assert decision.history_reason() == "policy exemption: lost-slot offer accepted"


# --- cancel ----------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ALL_ACTORS)
def test_cancel_exactly_at_the_cutoff_is_allowed(actor: Actor) -> None:
    decision = decide_cancel(POLICY, booking(timedelta(minutes=120)), actor=actor, now=NOW)
    assert decision == Decision("cancel", "allowed", status="confirmed")
    assert not decision.policy_override


def test_cancel_ignores_the_number_of_changes() -> None:
    assert decide_cancel(POLICY, booking(changes=9), actor="customer", now=NOW).allowed


@pytest.mark.parametrize("actor", ["customer", "app", "partner"])
def test_cancel_after_the_cutoff_is_refused_to_customers(actor: Actor) -> None:
    late = booking(timedelta(minutes=120) - US, status="pending")
    decision = decide_cancel(POLICY, late, actor=actor, now=NOW, override_reason="please")
    assert decision == Decision(
        "cancel", "refused", (CANCEL_CUTOFF,), status="pending", cutoff=POLICY.cutoff
    )
    with pytest.raises(PolicyViolation) as error:
        decision.enforce()
    assert problem(error) == {
        "type": "/problems/change-policy",
        "title": "The business's change policy does not allow this",
        "status": 409,
        "detail": "Cancellations close 2 h before the appointment; please contact the business.",
        "breaches": ["cancellations close 2 h before the appointment"],
    }


def test_cancel_message_shows_fractional_hours() -> None:
    policy = BusinessPolicy(timedelta(minutes=30), 3, timedelta(0))
    decision = decide_cancel(policy, booking(timedelta(minutes=10)), actor="app", now=NOW)
    with pytest.raises(PolicyViolation, match=r"^Cancellations close 0\.5 h before"):
        decision.enforce()


def test_the_system_cancels_any_time() -> None:
    decision = decide_cancel(POLICY, booking(-timedelta(hours=1)), actor="system", now=NOW)
    assert decision == Decision("cancel", "allowed", status="confirmed")


@pytest.mark.parametrize("actor", ["front_desk", "manager"])
def test_staff_cancel_after_the_cutoff_is_an_override(actor: Actor) -> None:
    late = booking(timedelta(minutes=10))
    decision = decide_cancel(POLICY, late, actor=actor, now=NOW, override_reason=" ill ")
    assert decision == Decision(
        "cancel", "allowed", (CANCEL_CUTOFF,), override_reason="ill", status="confirmed"
    )
    assert decision.policy_override
    assert decision.history_reason("customer called") == "customer called; ill"
    assert decision.history_reason("ill") == "ill"  # the cancel reason given as the override
    unexplained = decide_cancel(POLICY, late, actor=actor, now=NOW, override_reason="  ")
    assert unexplained == Decision("cancel", "allowed", (CANCEL_CUTOFF,), status="confirmed")
    assert unexplained.history_reason() == "staff override"
    assert decide_cancel(POLICY, late, actor=actor, now=NOW) == unexplained


def test_staff_cancel_keeps_an_exemption() -> None:
    decision = decide_cancel(
        POLICY, booking(timedelta(minutes=10)), actor="manager", now=NOW, exemption=LOST_SLOT
    )
    assert decision.exemption == LOST_SLOT
    assert decision.history_reason() == "policy exemption: lost-slot offer accepted"


@pytest.mark.parametrize("actor", ["customer", "app", "partner"])
def test_an_exemption_lets_a_customer_cancel_late(actor: Actor) -> None:
    decision = decide_cancel(
        POLICY, booking(timedelta(minutes=10)), actor=actor, now=NOW, exemption=LOST_SLOT
    )
    assert decision == Decision(
        "cancel", "allowed", (CANCEL_CUTOFF,), exemption=LOST_SLOT, status="confirmed"
    )
    assert decision.history_reason("page") == "page; policy exemption: lost-slot offer accepted"
