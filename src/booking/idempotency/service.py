"""Idempotency records: one row per (principal, key) in PostgreSQL, kept 24 hours.

The first request with a key claims the row (``in_progress``) with a
fingerprint of its method, path and body; when it finishes, its status, a few
headers and its body are stored (``completed``). A retry with the same key and
fingerprint gets the stored answer; with another fingerprint it is refused
(422). A claim whose owner died (``locked_until`` passed) may be taken over by
a retry of the same request; expired records are replaced and purged.

A takeover says so (:attr:`Claimed.resumed_since`): the request that died may have
committed its effect before it could store its answer, and only the handler knows how
to find that effect and answer it again instead of acting twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from booking import db
from booking.errors import IdempotencyConflict

RETENTION = timedelta(hours=24)
# A claim older than this is treated as abandoned (its process died mid-request).
CLAIM_TIMEOUT = timedelta(seconds=60)
REPLAYED_HEADERS = ("content-type", "etag", "location", "retry-after")


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status_code: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Claimed:
    owner: UUID
    read: asyncpg.Record | None = None  # the row of claim(read=...), read with the claim
    # A claim taken over from a request that died (its lock ran out): when that request
    # first claimed the key. Whatever it committed since then may be this request's effect.
    resumed_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class InProgress:
    pass


Claim = Claimed | StoredAnswer | InProgress

# Set by the middleware around a handler whose claim was taken over (Claimed.resumed_since).
_resumed: ContextVar[datetime | None] = ContextVar("idempotency_resumed", default=None)


def resumed_since() -> datetime | None:
    """Inside a request whose ``Idempotency-Key`` claim it took over from a request that
    died: when that request first claimed the key. A handler whose effect can be found
    (a booking made by this principal since then) answers it again instead of acting
    twice; None for every other request."""
    return _resumed.get()


@contextmanager
def resuming(since: datetime | None) -> Iterator[None]:
    """Run a claimed request's handler: :func:`resumed_since` answers ``since`` inside."""
    token = _resumed.set(since)
    try:
        yield
    finally:
        _resumed.reset(token)


def fingerprint(method: str, path: str, body: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), hashlib.sha256(body).digest()):
        digest.update(len(part).to_bytes(4, "big"))
        digest.update(part)
    return digest.digest()


_CLAIM = """
INSERT INTO idempotency_record AS r (principal, key, fingerprint, method, path, state,
    owner, locked_until, expires_at)
SELECT $1, $2, $3, $4, $5, 'in_progress', $6, now() + $7, now() + $8
FROM (SELECT set_config('synchronous_commit', 'off', true)) AS no_flush_wait
ON CONFLICT (principal, key) DO UPDATE SET
    fingerprint = EXCLUDED.fingerprint, method = EXCLUDED.method,
    path = EXCLUDED.path, state = 'in_progress', owner = EXCLUDED.owner,
    status_code = NULL, headers = '{}'::jsonb, body = NULL,
    -- a takeover keeps the first claim's time: see resumed_since
    created_at = CASE WHEN r.expires_at <= now() THEN now() ELSE r.created_at END,
    locked_until = EXCLUDED.locked_until, expires_at = EXCLUDED.expires_at
WHERE r.expires_at <= now()
   OR (r.state = 'in_progress' AND r.locked_until <= now()
       AND r.fingerprint = EXCLUDED.fingerprint)
RETURNING owner, CASE WHEN created_at < now() THEN created_at END AS resumed_since
"""


async def claim(
    principal: str,
    key: str,
    method: str,
    path: str,
    body: bytes,
    *,
    read: tuple[str, tuple[Any, ...]] | None = None,
) -> Claim:
    """Claim ``key`` for this request, or say what the earlier request left.

    ``read``: a one-row SELECT the caller needs next (its parameters numbered from $9),
    evaluated in the claim's own statement - one round trip for both - and returned on
    :class:`Claimed` (a replay or a twin in progress does not need it)."""
    print_ = fingerprint(method, path, body)
    owner = uuid4()
    # Autocommit: the upsert is one atomic statement, and the read after it takes a
    # snapshot of its own either way (READ COMMITTED); BEGIN/COMMIT would add two
    # round trips to every keyed write. complete and release are one statement too.
    #
    # The claim commits without waiting for its WAL flush (synchronous_commit off for
    # this statement's own transaction): every effect that may follow it - the
    # handler's write, complete, release - commits synchronously later, and flushing
    # the WAL up to that commit flushes the claim before it. A crash can lose only a
    # claim nothing durable came after, which a retry then claims afresh. One disk
    # flush less per keyed write (bench/marketplace.py: three per CreateBooking).
    # Inside a caller's transaction the setting would cover that whole transaction.
    assert not db.in_transaction(), "an idempotency claim commits on its own"
    args = (principal, key, print_, method, path, owner, CLAIM_TIMEOUT, RETENTION)
    async with db.connection() as conn:
        if read is None:
            extra = None
            won = await conn.fetchrow(_CLAIM, *args)
            taken, since = (won["owner"], won["resumed_since"]) if won else (None, None)
        else:
            sql, read_args = read
            extra = await conn.fetchrow(
                f"WITH claimed AS ({_CLAIM}) SELECT (SELECT owner FROM claimed) AS "
                "claimed_owner, (SELECT resumed_since FROM claimed) AS claimed_since, "
                f"also.* FROM ({sql}) AS also",
                *args,
                *read_args,
            )
            assert extra is not None, "claim(read=...) reads one row"
            taken, since = extra["claimed_owner"], extra["claimed_since"]
        if taken is not None:
            return Claimed(owner=taken, read=extra, resumed_since=since)
        row = await conn.fetchrow(
            "SELECT fingerprint, state, status_code, headers, body FROM idempotency_record "
            "WHERE principal = $1 AND key = $2",
            principal,
            key,
        )
    if row is None:  # released (5xx) between the two statements: try again
        return InProgress()
    if bytes(row["fingerprint"]) != print_:
        raise IdempotencyConflict(
            "This Idempotency-Key was already used with a different request "
            "(method, path or body); use a new key for a new request.",
        )
    if row["state"] != "completed":
        return InProgress()
    return StoredAnswer(
        status_code=row["status_code"],
        headers=json.loads(row["headers"]),
        body=bytes(row["body"] or b""),
    )


async def complete(
    principal: str, key: str, owner: UUID, status_code: int, headers: dict[str, str], body: bytes
) -> None:
    kept = {name: value for name, value in headers.items() if name in REPLAYED_HEADERS}
    async with db.connection() as conn:
        await conn.execute(
            """
            UPDATE idempotency_record SET state = 'completed', status_code = $4,
                headers = $5::jsonb, body = $6
            WHERE principal = $1 AND key = $2 AND owner = $3
            """,
            principal,
            key,
            owner,
            status_code,
            json.dumps(kept),
            body,
        )


async def release(principal: str, key: str, owner: UUID) -> None:
    """Forget a claim whose answer must not be replayed (5xx, 429): a retry runs again."""
    async with db.connection() as conn:
        await conn.execute(
            "DELETE FROM idempotency_record WHERE principal = $1 AND key = $2 AND owner = $3",
            principal,
            key,
            owner,
        )


async def purge_expired(batch: int = 5000) -> int:
    async with db.transaction() as conn:
        result: str = await conn.execute(
            """
            DELETE FROM idempotency_record WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM idempotency_record WHERE expires_at <= now() LIMIT $1))
            """,
            batch,
        )
    return int(result.split()[-1])
