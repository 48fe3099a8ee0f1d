"""Partners and API keys (stored hashed, found by prefix)."""

from piccolo.columns import UUID, Array, Bytea, Text, Timestamptz
from piccolo.table import Table


class Partner(Table, tablename="partner"):
    id = UUID(primary_key=True)
    name = Text()
    created_at = Timestamptz()


class ApiKey(Table, tablename="api_key"):
    id = UUID(primary_key=True)
    prefix = Text()
    key_hash = Bytea()
    kind = Text()
    role = Text(null=True)
    partner_id = UUID(null=True)
    business_ids = Array(base_column=UUID())
    scopes = Array(base_column=Text())
    name = Text(default="")
    created_at = Timestamptz()
    revoked_at = Timestamptz(null=True)
    last_used_at = Timestamptz(null=True)
