"""Customers: one per phone number per business, phone kept in E.164."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import phonenumbers

from booking.errors import InvalidInput

SUPPORTED_LOCALES = ("en", "it")
_REGION_BY_LOCALE = {"it": "IT", "en": "GB"}


def normalize_phone(raw: str, default_region: str | None = None) -> str:
    """E.164 form of a phone number, or InvalidInput with a clear reason."""
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(
            "The phone number could not be read; use international form, e.g. +393331234567.",
            field="customer.phone",
        ) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput("The phone number is not a valid number.", field="customer.phone")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def normalize_locale(raw: str | None, fallback: str) -> str:
    if raw is None:
        return fallback if fallback in SUPPORTED_LOCALES else "en"
    short = raw.strip().lower().replace("_", "-").split("-")[0]
    if short not in SUPPORTED_LOCALES:
        raise InvalidInput(
            f"Locale {raw!r} is not supported; use one of {', '.join(SUPPORTED_LOCALES)}.",
            field="customer.locale",
        )
    return short


def customer_phone(raw: str, business_locale: str) -> str:
    """The phone as a booking at that business stores it (E.164), or InvalidInput."""
    return normalize_phone(raw, _REGION_BY_LOCALE.get(business_locale))


def customer_fields(
    *, name: str, phone: str, locale: str | None, business_locale: str
) -> tuple[str, str, str]:
    """(name, E.164 phone, locale) as stored, or InvalidInput: the checks of an upsert."""
    clean_name = name.strip()
    if not 1 <= len(clean_name) <= 200:
        raise InvalidInput(
            "The customer's name must be 1 to 200 characters.", field="customer.name"
        )
    e164 = customer_phone(phone, business_locale)
    return clean_name, e164, normalize_locale(locale, business_locale)


async def upsert_customer(
    conn: asyncpg.Connection,
    business_id: UUID,
    *,
    name: str,
    phone: str,
    locale: str | None,
    business_locale: str,
) -> UUID:
    """The customer with this phone at this business, created on first booking."""
    clean_name, e164, chosen_locale = customer_fields(
        name=name, phone=phone, locale=locale, business_locale=business_locale
    )
    customer_id: UUID = await conn.fetchval(
        """
        INSERT INTO customer (business_id, name, phone, locale)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (business_id, phone) DO UPDATE SET locale = EXCLUDED.locale
        RETURNING id
        """,
        business_id,
        clean_name,
        e164,
        chosen_locale,
    )
    return customer_id
