"""Rate limits: a fixed one-minute window counted in Redis.

Each API key (or booking link) gets ``limit`` requests per wall-clock minute;
the next one is a 429 problem with ``Retry-After`` (seconds to the next
window). A key's own ``rate_limit_per_minute`` overrides the default; 0 means
no limit. Requests without a valid credential are counted per client address
(:func:`client_subject`), the public ``/b/`` pages per link and per address.
If Redis is unreachable the limiter lets the request through: it protects
capacity, it is not an authorization check.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any

from booking.errors import RateLimited

WINDOW_SECONDS = 60
log = logging.getLogger("booking.access.ratelimit")


def window_key(subject: str, now: float) -> tuple[str, int]:
    """The Redis key counting ``subject`` in the window holding ``now``, and seconds left."""
    window = int(now // WINDOW_SECONDS)
    remaining = math.ceil((window + 1) * WINDOW_SECONDS - now)
    return f"ratelimit:{subject}:{window}", max(1, remaining)


def client_subject(kind: str, address: str | None) -> str:
    """The counter of one client address for ``kind`` of request (``anon``, ``page``)."""
    return f"{kind}-addr:{address or 'unknown'}"


def link_subject(token: str) -> str:
    """The counter of one customer link; the token itself is never a Redis key."""
    return "page-link:" + hashlib.sha256(token.encode()).hexdigest()[:24]


async def hit(
    redis: Any, subject: str, limit: int, *, now: float | None = None, who: str = "This key"
) -> int:
    """Count one request; :class:`RateLimited` when ``subject`` is over ``limit``.

    Returns the count in the current window (0 when limiting is off or Redis is down).
    """
    if limit <= 0:
        return 0
    moment = time.time() if now is None else now
    key, retry_after = window_key(subject, moment)
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS + 5)
            count, _ = await pipe.execute()
    except (OSError, ConnectionError) as exc:
        log.warning("rate limiter unavailable, letting the request through: %r", exc)
        return 0
    except Exception as exc:  # redis.exceptions.* are not OSError subclasses
        if type(exc).__module__.startswith("redis"):
            log.warning("rate limiter unavailable, letting the request through: %r", exc)
            return 0
        raise
    if int(count) > limit:
        raise RateLimited(
            f"{who} may make {limit} requests a minute; retry in {retry_after} s.",
            retry_after=retry_after,
            limit=limit,
        )
    return int(count)
