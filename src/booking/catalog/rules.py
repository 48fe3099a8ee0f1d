"""Checks on catalog input that need more than a type: a real time zone, a real phone,
a currency, a locale the messages exist in, ranges that do not overlap."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import time
from functools import cache
from itertools import pairwise
from zoneinfo import available_timezones

from booking.customers import SUPPORTED_LOCALES, normalize_phone
from booking.errors import InvalidInput

# ISO 4217 active currency codes (funds and precious metals left out).
_ISO_4217_CODES = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD "
    "FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY "
    "KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP "
    "MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR "
    "RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT "
    "TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR "
    "ZMW ZWG"
)
ISO_4217 = frozenset(_ISO_4217_CODES.split())


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def time_zone(name: str) -> str:
    if name not in _zones():
        raise InvalidInput(
            f"{name!r} is not an IANA time zone; use a name such as 'America/New_York'.",
            field="time_zone",
        )
    return name


def phone(raw: str | None, field: str) -> str | None:
    if raw is None:
        return None
    try:
        return normalize_phone(raw)
    except InvalidInput as exc:
        raise InvalidInput(
            f"{field} must be a phone number in international form, e.g. +12125550123.",
            field=field,
        ) from exc


def locale(raw: str) -> str:
    short = raw.strip().lower().replace("_", "-").split("-")[0]
    if short not in SUPPORTED_LOCALES:
        raise InvalidInput(
            f"Locale {raw!r} is not supported; use one of {', '.join(SUPPORTED_LOCALES)}.",
            field="locale",
        )
    return short


def currency(code: str) -> str:
    if code not in ISO_4217:
        raise InvalidInput(f"{code!r} is not an ISO 4217 currency code.", field="currency")
    return code


def reminder_offsets(offsets: Iterable[int]) -> list[int]:
    values = list(offsets)
    if len(set(values)) != len(values):
        raise InvalidInput("Reminder offsets must differ.", field="reminder_offsets_minutes")
    return sorted(values, reverse=True)


def ranges(pairs: Iterable[tuple[time, time]], field: str) -> list[tuple[time, time]]:
    """One day's ranges, sorted; each must close after it opens, none may overlap."""
    ordered = sorted(pairs)
    for opens_at, closes_at in ordered:
        if opens_at.tzinfo is not None or closes_at.tzinfo is not None:
            raise InvalidInput(
                "Hours are wall-clock times in the business's zone, without an offset.",
                field=field,
            )
        if closes_at <= opens_at:
            raise InvalidInput(
                f"A range must close after it opens ({opens_at:%H:%M}-{closes_at:%H:%M}).",
                field=field,
            )
    for (_, first_closes), (second_opens, _) in pairwise(ordered):
        if second_opens < first_closes:
            raise InvalidInput("Hour ranges on the same day must not overlap.", field=field)
    return ordered
