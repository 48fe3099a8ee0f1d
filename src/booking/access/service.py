"""API keys: shown once, stored as a SHA-256 hash, found by their prefix, revocable.

Authentication runs on every request, so each process caches what a key means. Two
cheap checks keep that cache honest (:mod:`booking.access.key_use`): a revocation made
by any process reaches every process within a second (the count of revoked keys is
read at most every ``REVOCATION_CHECK_SECONDS``; when it moved, the cache is dropped),
and ``api_key.last_used_at`` is written coalesced, one UPDATE per process per
``LAST_USED_FLUSH_SECONDS`` for all the keys it saw, never a write per request.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from booking import db
from booking.access import key_use
from booking.access.principal import (
    APP_DEFAULT_SCOPES,
    SCOPES,
    STAFF_ROLES,
    Principal,
    PrincipalKind,
)
from booking.access.tokens import TOKEN_PREFIX, TokenError, read_booking_token
from booking.errors import Forbidden, InvalidInput, NotFound, Unauthenticated

KEY_PREFIX = "bk_"
_CACHE_SECONDS = 5.0
# Authentication happens on every request; a short cache keeps the hot path off
# the database. A revoked key stops working within key_use.REVOCATION_CHECK_SECONDS
# (plus one small query) in every process, and within _CACHE_SECONDS at worst.
_cache: dict[str, tuple[float, Principal | None]] = {}
_inflight: dict[str, asyncio.Task[Principal | None]] = {}


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
    rate_limit_per_minute: int | None = None,
    created_by: str = "cli",
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
    if rate_limit_per_minute is not None and rate_limit_per_minute < 0:
        raise InvalidInput("rate_limit_per_minute cannot be negative.")
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
                                 scopes, name, rate_limit_per_minute, created_by)
            VALUES ($1, $2, $3, $4, $5, $6::uuid[], $7::text[], $8, $9, $10) RETURNING id
            """,
            prefix,
            _hash(secret),
            kind,
            role if kind == "staff" else None,
            partner_id,
            business_list,
            sorted(scope_set),
            name,
            rate_limit_per_minute,
            created_by,
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
            SELECT id, key_hash, kind, role, partner_id, business_ids, scopes,
                   rate_limit_per_minute
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
        rate_limit=row["rate_limit_per_minute"],
    )


async def _single_flight(secret: str) -> Principal | None:
    """One database lookup per key at a time: when the cache entry of a busy key
    expires, every request in flight would otherwise query it at once (64 clients
    gave 64 identical lookups every 5 s). The lookup runs as its own task, in an empty
    context (never inside a caller's transaction) and shielded from a waiter's
    cancellation; its answer or error goes to every waiter."""
    task = _inflight.get(secret)
    if task is None:
        task = asyncio.get_running_loop().create_task(
            _principal_for_key(secret), context=contextvars.Context()
        )
        _inflight[secret] = task
        task.add_done_callback(lambda _: _inflight.pop(secret, None))
    return await asyncio.shield(task)


async def authenticate(credential: str | None, secret_key: str | Sequence[str]) -> Principal:
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
    if await key_use.revocations_moved(now):
        _cache.clear()
    cached = _cache.get(credential)
    if cached is not None and cached[0] > now:
        principal = cached[1]
    else:
        principal = await _single_flight(credential)
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[credential] = (now + _CACHE_SECONDS, principal)
    if principal is None:
        raise Unauthenticated("The API key is not valid or was revoked.")
    key_use.seen(principal.id, now)
    return principal


def clear_cache() -> None:
    _cache.clear()
    key_use.reset()


# --- key management over HTTP: who may issue, list and revoke which keys -------------

KEY_COLUMNS = """
    id, prefix, kind, role, partner_id, business_ids, scopes, name, rate_limit_per_minute,
    created_by, created_at, revoked_at
"""


@dataclass(frozen=True, slots=True)
class KeyRequest:
    kind: str
    name: str = ""
    business_ids: tuple[UUID, ...] = ()
    role: str | None = None
    partner_id: UUID | None = None
    partner_name: str | None = None
    scopes: tuple[str, ...] = ()
    rate_limit_per_minute: int | None = None


def _manager_business(principal: Principal) -> UUID:
    (business_id,) = tuple(principal.business_ids)
    return business_id


def _check_may_issue(principal: Principal, request: KeyRequest) -> None:
    """Admins issue partner, staff and app keys; a manager staff and app keys for their shop."""
    if principal.kind == "admin":
        if request.kind == "admin":
            raise Forbidden("Admin keys are issued with the CLI only (booking key create).")
        return
    if not (principal.kind == "staff" and principal.is_manager):
        raise Forbidden("Only an admin or a manager may issue API keys.")
    if request.kind not in ("staff", "app"):
        raise Forbidden("A manager may issue staff and app keys only.")
    own = _manager_business(principal)
    for business_id in request.business_ids:
        principal.require_business(business_id)  # another tenant's business: 404
    if set(request.business_ids) != {own}:
        raise InvalidInput("A manager's keys belong to the manager's business only.")
    if request.kind == "app" and not set(request.scopes) <= APP_DEFAULT_SCOPES:
        raise Forbidden(f"A manager may grant app keys only {sorted(APP_DEFAULT_SCOPES)}.")
    if request.rate_limit_per_minute is not None:
        raise Forbidden("Only an admin may set a key's rate limit.")


async def issue_key(principal: Principal, request: KeyRequest) -> tuple[IssuedKey, dict[str, Any]]:
    """A new key (the secret is in the IssuedKey, shown once) and its stored description."""
    _check_may_issue(principal, request)
    partner_id = request.partner_id
    if request.kind == "partner" and partner_id is None:
        if not request.partner_name:
            raise InvalidInput("A partner key needs partner_id or partner_name.")
        partner_id = await create_partner(request.partner_name)
    elif partner_id is not None:
        async with db.connection() as conn:
            if not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM partner WHERE id = $1)", partner_id
            ):
                raise NotFound("No such partner.")
    issued = await create_api_key(
        kind=request.kind,
        name=request.name,
        business_ids=request.business_ids,
        role=request.role,
        partner_id=partner_id if request.kind == "partner" else None,
        scopes=request.scopes,
        rate_limit_per_minute=request.rate_limit_per_minute,
        created_by=principal.actor_label,
    )
    async with db.connection() as conn:
        row = await conn.fetchrow(f"SELECT {KEY_COLUMNS} FROM api_key WHERE id = $1", issued.id)
    assert row is not None
    return issued, dict(row)


def _may_manage(principal: Principal, row: Any) -> bool:
    if principal.kind == "admin":
        return True
    if principal.kind == "staff" and principal.is_manager:
        return row["kind"] in ("staff", "app") and set(row["business_ids"]) == set(
            principal.business_ids
        )
    return False


async def list_keys(principal: Principal, *, include_revoked: bool = False) -> list[dict[str, Any]]:
    """Keys the caller manages, newest first; never the secret or its hash."""
    if not (principal.kind == "admin" or (principal.kind == "staff" and principal.is_manager)):
        raise Forbidden("Only an admin or a manager may list API keys.")
    async with db.connection() as conn:
        rows = await conn.fetch(
            f"""
            SELECT {KEY_COLUMNS} FROM api_key
            WHERE ($1 OR revoked_at IS NULL)
              AND ($2::uuid[] IS NULL OR (kind IN ('staff', 'app') AND business_ids = $2::uuid[]))
            ORDER BY created_at DESC, id
            """,
            include_revoked,
            None if principal.kind == "admin" else sorted(principal.business_ids, key=str),
        )
    return [dict(row) for row in rows if _may_manage(principal, row)]


async def revoke_key(principal: Principal, key_id: UUID) -> dict[str, Any]:
    """Revoke a key the caller manages (idempotent); a key they cannot see is a 404."""
    if not (principal.kind == "admin" or (principal.kind == "staff" and principal.is_manager)):
        raise Forbidden("Only an admin or a manager may revoke API keys.")
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            f"SELECT {KEY_COLUMNS} FROM api_key WHERE id = $1 FOR UPDATE", key_id
        )
        if row is None or not _may_manage(principal, row):
            raise NotFound("No such API key.")
        if row["revoked_at"] is None:
            row = await conn.fetchrow(
                f"UPDATE api_key SET revoked_at = now() WHERE id = $1 RETURNING {KEY_COLUMNS}",
                key_id,
            )
    _cache.clear()
    assert row is not None
    return dict(row)
