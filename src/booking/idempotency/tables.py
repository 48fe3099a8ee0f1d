"""Stored first answers to Idempotency-Key requests (per principal, 24 h)."""

from piccolo.columns import JSONB, UUID, Bytea, Integer, Text, Timestamptz
from piccolo.table import Table


class IdempotencyRecord(Table, tablename="idempotency_record"):
    # Piccolo has no composite keys; the real primary key is (principal, key) (see migration).
    principal = Text(primary_key=True)
    key = Text()
    fingerprint = Bytea()
    method = Text()
    path = Text()
    state = Text()
    owner = UUID()
    status_code = Integer(null=True)
    headers = JSONB()
    body = Bytea(null=True)
    created_at = Timestamptz()
    locked_until = Timestamptz()
    expires_at = Timestamptz()
