"""Reference codes: short, easy to read out at a counter, unique per business."""

from __future__ import annotations

import secrets

REFERENCE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: easy to read out
REFERENCE_LENGTH = 6


def new_reference_code() -> str:
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))


_UNBIASED_BELOW = 256 - 256 % len(REFERENCE_ALPHABET)


def new_reference_codes(count: int) -> list[str]:
    """``count`` codes like :func:`new_reference_code` (uniform over the alphabet:
    random bytes past the last whole multiple of the alphabet are dropped), from one
    call to the system's random source instead of one per character."""
    wanted = count * REFERENCE_LENGTH
    letters: list[str] = []
    while len(letters) < wanted:
        letters += [
            REFERENCE_ALPHABET[byte % len(REFERENCE_ALPHABET)]
            for byte in secrets.token_bytes(wanted + wanted // 4 + 8)
            if byte < _UNBIASED_BELOW
        ]
    return ["".join(letters[i : i + REFERENCE_LENGTH]) for i in range(0, wanted, REFERENCE_LENGTH)]


def normalize_reference(raw: str) -> str:
    return raw.strip().upper().replace("-", "").replace(" ", "")
