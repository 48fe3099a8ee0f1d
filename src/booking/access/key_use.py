"""Keeping each process's key cache honest, cheaply.

* **Revocation within a second, everywhere.** Any process (or ``booking key revoke``)
  may revoke a key; the others hold it in their cache for up to 5 s. So every process
  reads the number of revoked keys at most every :data:`REVOCATION_CHECK_SECONDS`
  (one indexed count, by one request at a time; the rest use the cache meanwhile) and
  drops its cache when the number moved. A count and not ``max(revoked_at)``: a
  revocation whose transaction started earlier commits an older ``now()``, a count
  always moves. No Redis needed (it still works while Redis is down), no listener
  task, and the bound holds whatever the load: the check runs on the first request
  after the interval. When that read fails (a database blip), the process keeps its
  cache and looks again after the interval: authentication goes on from the cache
  (entries still expire after 5 s), instead of every keyed request failing with the
  read; a revocation made meanwhile is seen on the next successful read.
* **last_used_at, coalesced.** A request only notes ``key id -> when`` in memory; at
  most every :data:`LAST_USED_FLUSH_SECONDS` one background UPDATE writes every noted
  key (and the app's shutdown writes the rest), so a busy key costs one write per
  process per interval, not one per request. The column never moves backwards.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from datetime import UTC, datetime

from booking import db

REVOCATION_CHECK_SECONDS = 0.5
LAST_USED_FLUSH_SECONDS = 30.0

log = logging.getLogger(__name__)

_revocations_seen: int | None = None
_revocations_checked_at = float("-inf")
_check: asyncio.Task[int] | None = None

_used: dict[str, datetime] = {}
_flushed_at: float | None = None
_flushes: set[asyncio.Task[int]] = set()


async def _count_revoked() -> int:
    async with db.connection() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM api_key WHERE revoked_at IS NOT NULL"
        )
    return count


async def revocations_moved(now: float) -> bool:
    """True when keys were revoked since this process last looked (drop the cache)."""
    global _revocations_seen, _revocations_checked_at, _check
    if now - _revocations_checked_at < REVOCATION_CHECK_SECONDS:
        return False
    _revocations_checked_at = now  # the other requests meanwhile use the cache
    if _check is None or _check.done():
        # Its own task in an empty context: never inside a caller's transaction.
        _check = asyncio.get_running_loop().create_task(
            _count_revoked(), context=contextvars.Context()
        )
    try:
        count = await asyncio.shield(_check)
    except Exception as exc:
        # Keep the cache; the next request after the interval looks again.
        log.warning("could not read the revoked-key count; keeping the key cache: %r", exc)
        return False
    moved = count != _revocations_seen
    _revocations_seen = count
    return moved


def seen(key_id: str, now: float) -> None:
    """Note that a key was used now; write the notes when the interval has passed."""
    global _flushed_at
    _used[key_id] = datetime.now(UTC)
    if _flushed_at is None:
        _flushed_at = now
    elif now - _flushed_at >= LAST_USED_FLUSH_SECONDS:
        _flushed_at = now
        task = asyncio.get_running_loop().create_task(
            flush_last_used(), context=contextvars.Context()
        )
        _flushes.add(task)
        task.add_done_callback(_flushes.discard)


async def flush_last_used() -> int:
    """Write every noted ``last_used_at`` in one UPDATE; the number of keys written."""
    if not _used:
        return 0
    batch = dict(_used)
    _used.clear()
    try:
        async with db.connection() as conn:
            result = await conn.execute(
                """
                UPDATE api_key k SET last_used_at = u.at
                FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at)
                WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)
                """,
                list(batch),
                list(batch.values()),
            )
    except Exception:
        # Keep the notes for the next flush (a newer note wins); never fail a request.
        for key_id, at in batch.items():
            _used[key_id] = max(at, _used.get(key_id, at))
        log.warning("could not record api_key.last_used_at; will retry", exc_info=True)
        return 0
    return int(result.rsplit(" ", 1)[-1])


async def drain() -> None:
    """At shutdown: wait for a flush in flight, then write what is left."""
    if _flushes:
        await asyncio.gather(*_flushes, return_exceptions=True)
    await flush_last_used()


def reset() -> None:
    """Forget everything (tests start from a clean database)."""
    global _revocations_seen, _revocations_checked_at, _flushed_at
    _revocations_seen = None
    _revocations_checked_at = float("-inf")
    _used.clear()
    _flushed_at = None
