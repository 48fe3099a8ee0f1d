"""The desk's pure rules: reading what is typed in the search field, the day's free gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from booking.desk.day import free_gaps
from booking.desk.search import parse_query


def test_a_reference_is_read_forgivingly() -> None:
    assert parse_query("k7qm4x").references == ("K7QM4X",)
    assert parse_query(" k7q-m4x ").references == ("K7QM4X",)
    # O and 0 are not in the alphabet: either look-alike is tried.
    assert set(parse_query("K7OM4X").references) == {"K7QM4X", "K7DM4X"}
    assert parse_query("K7Q").reference_prefix == "K7Q"
    assert parse_query("anna ferri").references == ()


def test_a_phone_in_any_format_becomes_e164() -> None:
    for typed in ("333 123 4567", "+39 333 123 4567", "0039 333-1234567", "(333) 1234567"):
        assert parse_query(typed, "it").phone_like == "+393331234567", typed
    assert parse_query("1234567", "it").phone_like == "%1234567%"
    assert parse_query("anna", "it").phone_like is None


def test_a_name_matches_any_part() -> None:
    assert parse_query("Ferri").name_like == "%ferri%"
    assert parse_query("50%_off").name_like == "%50\\%\\_off%"
    assert parse_query("a").name_like is None
    assert parse_query("   ").empty


def test_a_name_search_starts_from_the_third_character() -> None:
    # One or two characters of a name find no names (nearly every customer would match).
    assert parse_query("an").name_like is None
    assert parse_query(" an ").name_like is None
    assert parse_query("an").empty
    assert parse_query("ann").name_like == "%ann%"
    assert parse_query("a f").name_like == "%a f%"
    # References and phones are read as before.
    assert parse_query("K7Q").reference_prefix == "K7Q"
    assert parse_query("3331", "it").phone_like == "%3331%"
    assert parse_query("   ").empty


def test_free_gaps_are_the_hours_nobody_holds() -> None:
    nine = datetime(2026, 12, 2, 8, tzinfo=UTC)
    hour = timedelta(hours=1)
    hours = [(nine, nine + 9 * hour)]
    busy = [(nine + hour, nine + 2 * hour), (nine + 90 * timedelta(minutes=1), nine + 3 * hour)]
    assert free_gaps(hours, busy) == [(nine, nine + hour), (nine + 3 * hour, nine + 9 * hour)]
    # A sliver shorter than 15 minutes is not a gap.
    assert free_gaps(hours, [(nine + timedelta(minutes=10), nine + 9 * hour)]) == []
