"""Secrets someone sends are compared with ours in constant time, whatever they are
written in: pure, no server."""

from __future__ import annotations

from uuid import uuid4

import pytest

from booking.access.tokens import TokenError, make_booking_token, read_booking_token, same_secret


@pytest.mark.parametrize(
    ("sent", "expected", "same"),
    [
        ("a1b2", "a1b2", True),
        ("a1b2", "a1b3", False),
        ("a1b2", "a1b", False),
        ("", "", True),
        ("ñ" * 4, "n" * 4, False),
        ("ñé", "ñé", True),
        ("\udc80", "x", False),  # a lone surrogate, as a badly encoded path may decode
    ],
)
def test_same_secret_compares_any_text(sent: str, expected: str, same: bool) -> None:
    assert same_secret(sent, expected) is same


def test_a_link_whose_mac_is_not_ascii_is_forged_not_an_error() -> None:
    token = make_booking_token("the-secret", uuid4())
    assert read_booking_token("the-secret", token)
    forged = token[: token.rindex(".") + 1] + "ñ" * 43
    with pytest.raises(TokenError) as refused:
        read_booking_token("the-secret", forged)
    assert refused.value.reason == "forged"
