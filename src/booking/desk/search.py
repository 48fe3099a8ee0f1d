"""One search field for the counter: a reference code, a phone number or a name.

* Reference codes are forgiving: case, spaces and dashes do not matter, and the
  characters the codes never use are read as their look-alikes (``O``/``0`` -> ``Q``
  or ``D``, ``I``/``1``/``L`` -> ``J``, ``T`` or ``7``, ``U`` -> ``V``). Three to five
  characters find the codes that start so (results as you type).
* A phone number in any format (``333 123 4567``, ``+39 333-1234567``, ``0039...``) is
  read in the business's country and matched in E.164; a partial one matches any
  number that contains its digits.
* Anything else matches any part of a customer's name from its third character on
  (:data:`NAME_MIN_CHARS`): one or two letters would match most customers and the
  trigram index cannot serve them; references and phones are read as before.

Only the signed-in business's bookings are searched. Pure parsing is in
:func:`parse_query` (no I/O); :func:`find_bookings` is one query.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import phonenumbers

from booking import db
from booking.bookings.references import REFERENCE_ALPHABET, REFERENCE_LENGTH

LOOK_ALIKES: dict[str, str] = {"0": "QD", "O": "QD", "1": "J7T", "I": "JT", "L": "J", "U": "V"}
_MAX_CANDIDATES = 64
_PHONE_CHARS = re.compile(r"^[\d\s+()./-]+$")
REGION_BY_LOCALE = {"it": "IT", "en": "GB"}
LIMIT = 10
NAME_MIN_CHARS = 3  # a name search starts from the third character typed


@dataclass(frozen=True, slots=True)
class Query:
    references: tuple[str, ...] = ()  # exact codes to look up
    reference_prefix: str | None = None  # a code being typed
    phone_like: str | None = None  # LIKE pattern over E.164 numbers
    name_like: str | None = None  # LIKE pattern over lower(name)

    @property
    def empty(self) -> bool:
        return not (self.references or self.reference_prefix or self.phone_like or self.name_like)


def _reference_candidates(cleaned: str) -> tuple[str, ...]:
    options = [LOOK_ALIKES.get(ch, ch) for ch in cleaned]
    if any(ch not in REFERENCE_ALPHABET for option in options for ch in option):
        return ()
    out: list[str] = []
    for combo in itertools.product(*options):
        out.append("".join(combo))
        if len(out) >= _MAX_CANDIDATES:
            break
    return tuple(out)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def parse_query(raw: str, locale: str | None = None) -> Query:
    text = raw.strip()[:100]
    if not text:
        return Query()
    references: tuple[str, ...] = ()
    prefix: str | None = None
    cleaned = re.sub(r"[\s-]", "", text).upper()
    if cleaned.isascii() and cleaned.isalnum():
        if len(cleaned) == REFERENCE_LENGTH:
            references = _reference_candidates(cleaned)
        elif 3 <= len(cleaned) < REFERENCE_LENGTH:
            first = _reference_candidates(cleaned)
            prefix = first[0] if first else None
    phone_like: str | None = None
    digits = re.sub(r"\D", "", text)
    if _PHONE_CHARS.match(text) and len(digits) >= 4:
        region = REGION_BY_LOCALE.get((locale or "")[:2].lower())
        try:
            parsed = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            parsed = None
        if parsed is not None and phonenumbers.is_valid_number(parsed):
            phone_like = _like_escape(
                phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            )
        else:
            if digits.startswith("00"):
                digits = digits[2:]
            elif digits.startswith("0") and region == "GB":
                digits = digits[1:]  # a UK trunk 0 is not part of the E.164 number
            phone_like = f"%{digits}%"
    name_like: str | None = None
    letters = sum(ch.isalpha() for ch in text)
    if letters >= 2 and len(text) >= NAME_MIN_CHARS:
        name_like = f"%{_like_escape(text.lower())}%"
    return Query(references, prefix, phone_like, name_like)


async def find_bookings(
    business_id: UUID, query: Query, today_start: datetime, limit: int = LIMIT
) -> list[dict[str, Any]]:
    """Bookings matching the query: exact references first, then by customer, upcoming
    first (nearest first), then past ones (latest first)."""
    if query.empty:
        return []
    prefix_high = f"{query.reference_prefix}~" if query.reference_prefix else None
    async with db.connection() as conn:
        rows = await conn.fetch(
            """
            WITH customers AS (
                SELECT c.id FROM customer c
                WHERE c.business_id = $1
                  AND (($3::text IS NOT NULL AND c.phone LIKE $3)
                       OR ($4::text IS NOT NULL AND lower(c.name) LIKE $4))
                ORDER BY c.name, c.id LIMIT 20
            ), found AS (
                SELECT b.id FROM booking b
                WHERE b.business_id = $1 AND b.reference_code = ANY($2::text[])
                UNION
                SELECT b.id FROM booking b
                WHERE $6::text IS NOT NULL AND b.business_id = $1
                  AND b.reference_code >= $6 AND b.reference_code < $7
                UNION
                SELECT b.id FROM customers c
                JOIN booking b ON b.business_id = $1 AND b.customer_id = c.id
            )
            SELECT b.id, b.reference_code, b.starts_at, b.status, b.version,
                   c.name AS customer_name, c.phone AS customer_phone,
                   st.name AS staff_name, sv.name AS service_name,
                   b.reference_code = ANY($2::text[]) AS exact
            FROM found f
            JOIN booking b ON b.business_id = $1 AND b.id = f.id
            JOIN customer c ON c.business_id = $1 AND c.id = b.customer_id
            LEFT JOIN staff st ON st.business_id = $1 AND st.id = b.staff_id
            JOIN service sv ON sv.business_id = $1 AND sv.id = b.service_id
            WHERE b.status <> 'expired'
            ORDER BY exact DESC, (b.starts_at < $5),
                     CASE WHEN b.starts_at >= $5 THEN b.starts_at END,
                     b.starts_at DESC, b.id
            LIMIT $8
            """,
            business_id,
            list(query.references),
            query.phone_like,
            query.name_like,
            today_start,
            query.reference_prefix,
            prefix_high,
            limit,
        )
    return [dict(row) for row in rows]
