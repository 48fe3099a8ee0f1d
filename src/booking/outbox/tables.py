"""Outbox rows: written in the transaction of the change, relayed after commit."""

from piccolo.columns import JSONB, UUID, Integer, Text, Timestamptz
from piccolo.table import Table


class Outbox(Table, tablename="outbox"):
    business_id = UUID(null=True)
    topic = Text()
    aggregate_id = UUID(null=True)
    payload = JSONB()
    created_at = Timestamptz()
    available_at = Timestamptz()
    relayed_at = Timestamptz(null=True)
    attempts = Integer(default=0)
    last_error = Text(null=True)
