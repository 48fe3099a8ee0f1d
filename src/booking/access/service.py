"""API keys: shown once, stored as a SHA-256 hash, found by their prefix, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from booking import db
from booking.access.principal import (
    APP_DEFAULT_SCOPES,
    SCOPES,
    STAFF_ROLES,
    Principal,
    PrincipalKind,
)
from booking.access.tokens import TOKEN_PREFIX, TokenError, read_booking_token
from booking.errors import InvalidInput, NotFound, Unauthenticated

KEY_PREFIX = "bk_"
_CACHE_SECONDS = 5.0
# Authentication happens on every request; a short cache keeps the hot path off
# the database. A revoked key stops working within _CACHE_SECONDS.
_cache: dict[str, tuple[float, Principal | None]] = {}


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: UUID
    key: str  # the only time the secret is visible
    prefix: str
    kind: str


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def create_api_key(
    *,
    kind: str,
    name: str = "",
    business_ids: Iterable[UUID] = (),
    role: str | None = None,
    partner_id: UUID | None = None,
    scopes: Iterable[str] = (),
) -> IssuedKey:
    business_list = sorted(set(business_ids), key=str)
    scope_set = set(scopes)
    if kind not in ("admin", "staff", "partner", "app"):
        raise InvalidInput(f"Unknown key kind {kind!r}.")
    if unknown := scope_set - SCOPES:
        raise InvalidInput(f"Unknown scopes: {sorted(unknown)}.")
    if kind == "staff":
        if role not in STAFF_ROLES:
            raise InvalidInput("A staff key needs role front_desk or manager.")
        if len(business_list) != 1:
            raise InvalidInput("A staff key belongs to exactly one business.")
    if kind == "partner" and partner_id is None:
        raise InvalidInput("A partner key needs a partner.")
    if kind in ("partner", "app") and not business_list:
        raise InvalidInput("A partner or app key needs at least one business.")
    if kind == "app" and not scope_set:
        scope_set = set(APP_DEFAULT_SCOPES)
    prefix = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    async with db.transaction() as conn:
        if business_list:
            found = await conn.fetchval(
                "SELECT count(*) FROM business WHERE id = ANY($1::uuid[])", business_list
            )
            if found != len(business_list):
                raise NotFound("One of the businesses does not exist.")
        key_id = await conn.fetchval(
            """
            INSERT INTO api_key (prefix, key_hash, kind, role, partner_id, business_ids,
                                 scopes, name)
            VALUES ($1, $2, $3, $4, $5, $6::uuid[], $7::text[], $8) RETURNING id
            """,
            prefix,
            _hash(secret),
            kind,
            role if kind == "staff" else None,
            partner_id,
            business_list,
            sorted(scope_set),
            name,
        )
    return IssuedKey(id=key_id, key=secret, prefix=prefix, kind=kind)


async def revoke_api_key(prefix_or_id: str) -> bool:
    async with db.transaction() as conn:
        result = await conn.fetchval(
            """
            UPDATE api_key SET revoked_at = now()
            WHERE (prefix = $1 OR id::text = $1) AND revoked_at IS NULL RETURNING prefix
            """,
            prefix_or_id,
        )
    _cache.clear()
    return result is not None


async def create_partner(name: str) -> UUID:
    async with db.transaction() as conn:
        partner_id: UUID = await conn.fetchval(
            "INSERT INTO partner (name) VALUES ($1) RETURNING id", name
        )
    return partner_id


async def _principal_for_key(secret: str) -> Principal | None:
    parts = secret[len(KEY_PREFIX) :].split("_", 1)
    if len(parts) != 2:
        return None
    async with db.connection() as conn:
        row = await conn.fetchrow(
            """
            SELECT id, key_hash, kind, role, partner_id, business_ids, scopes
            FROM api_key WHERE prefix = $1 AND revoked_at IS NULL
            """,
            parts[0],
        )
    if row is None or not hmac.compare_digest(bytes(row["key_hash"]), _hash(secret)):
        return None
    kind: PrincipalKind = row["kind"]
    return Principal(
        kind=kind,
        id=str(row["id"]),
        role=row["role"],
        business_ids=frozenset(row["business_ids"]),
        scopes=frozenset(row["scopes"]),
        partner_id=row["partner_id"],
    )


async def authenticate(credential: str | None, secret_key: str) -> Principal:
    """The principal behind an API key or a per-booking token, or 401."""
    if not credential:
        raise Unauthenticated("Send an API key as 'Authorization: Bearer <key>'.")
    if credential.startswith(TOKEN_PREFIX):
        try:
            booking_id = read_booking_token(secret_key, credential)
        except TokenError as exc:
            raise Unauthenticated(f"The booking link is {exc.reason}.") from exc
        async with db.connection() as conn:
            business_id = await conn.fetchval(
                "SELECT business_id FROM booking WHERE id = $1", booking_id
            )
        if business_id is None:
            raise Unauthenticated("The booking link is not valid.")
        return Principal(
            kind="customer",
            id=booking_id.hex,
            business_ids=frozenset({business_id}),
            booking_id=booking_id,
        )
    if not credential.startswith(KEY_PREFIX):
        raise Unauthenticated("The API key is not valid.")
    now = time.monotonic()
    cached = _cache.get(credential)
    if cached is not None and cached[0] > now:
        principal = cached[1]
    else:
        principal = await _principal_for_key(credential)
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[credential] = (now + _CACHE_SECONDS, principal)
    if principal is None:
        raise Unauthenticated("The API key is not valid or was revoked.")
    return principal


def clear_cache() -> None:
    _cache.clear()
