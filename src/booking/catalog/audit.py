"""ETags and the audit trail of the catalog.

ETag: a hash of the representation a read answers (not a version column). The catalog
has collections without a row of their own (a week of hours, a day's exception), rows
other code and raw SQL also write (the seeder, the guarantee's deactivation), and tables
other work is reshaping; a hash needs no column, trigger or migration to stay right for
all of them, and two reads of the same state always agree. If-Match is honoured when
sent (412 when it is not the current ETag), not required, like bookings' If-Match.

Audit: one append-only ``catalog_audit`` row per change, in the change's transaction,
with the actor (``principal.kind``/``principal.id``, as in booking history) and the
fields before and after.
"""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from booking.access.principal import Principal
from booking.errors import InvalidInput, VersionMismatch


def etag_of(representation: msgspec.Struct) -> str:
    digest = hashlib.sha256(msgspec.json.encode(representation)).hexdigest()
    return f'"{digest[:20]}"'


def check_if_match(if_match: str | None, current: msgspec.Struct) -> None:
    """412 when the caller's ETag is not the current one; ``*`` or no header passes."""
    if if_match is None or if_match.strip() == "*":
        return
    sent = [tag.strip().removeprefix("W/") for tag in if_match.split(",")]
    if any(not (tag.startswith('"') and tag.endswith('"') and len(tag) > 2) for tag in sent):
        raise InvalidInput(
            'If-Match must be an ETag as read, e.g. "3f1c0e9a7b2d4c6e8f10".', field="If-Match"
        )
    current_tag = etag_of(current)
    if current_tag not in sent:
        raise VersionMismatch(
            "It changed since you read it; read it again and retry.", current_etag=current_tag
        )


def _plain(value: Any) -> Any:
    return msgspec.to_builtins(value)


def diff(before: msgspec.Struct | None, after: msgspec.Struct | None) -> dict[str, Any]:
    """The fields that changed, as ``{field: {"from": old, "to": new}}``."""
    old = _plain(before) if before is not None else {}
    new = _plain(after) if after is not None else {}
    return {
        key: {"from": old.get(key), "to": new.get(key)}
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    }


async def record(
    conn: asyncpg.Connection,
    principal: Principal,
    business_id: UUID,
    entity: str,
    entity_id: UUID,
    action: str,
    changes: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO catalog_audit (business_id, entity, entity_id, action, actor_type, "
        "actor_id, changes) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
        business_id,
        entity,
        entity_id,
        action,
        principal.kind,
        principal.id,
        msgspec.json.encode(changes).decode(),
    )


AUDIT_PAGE = 200


async def entries(
    conn: asyncpg.Connection,
    business_id: UUID,
    *,
    entity: str | None,
    entity_id: UUID | None,
    before_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest first; ``before_id`` pages back."""
    rows = await conn.fetch(
        """
        SELECT id, entity, entity_id, action, actor_type, actor_id, changes, created_at
        FROM catalog_audit
        WHERE business_id = $1 AND ($2::text IS NULL OR entity = $2)
          AND ($3::uuid IS NULL OR entity_id = $3) AND ($4::bigint IS NULL OR id < $4)
        ORDER BY id DESC LIMIT $5
        """,
        business_id,
        entity,
        entity_id,
        before_id,
        limit,
    )
    return [dict(row) | {"changes": msgspec.json.decode(row["changes"])} for row in rows]
