"""Partner webhook endpoints, their deliveries and each delivery's attempts."""

from piccolo.columns import JSONB, UUID, Array, BigInt, Integer, Text, Timestamptz
from piccolo.table import Table


class WebhookEndpoint(Table, tablename="webhook_endpoint"):
    id = UUID(primary_key=True)
    partner_id = UUID()
    url = Text()
    description = Text(default="")
    event_types = Array(base_column=Text())
    secret = Text()
    created_by = Text()
    created_at = Timestamptz()
    failing_since = Timestamptz(null=True)
    disabled_at = Timestamptz(null=True)
    disabled_reason = Text(null=True)
    deleted_at = Timestamptz(null=True)


class WebhookDelivery(Table, tablename="webhook_delivery"):
    id = UUID(primary_key=True)
    endpoint_id = UUID()
    outbox_event_id = BigInt()
    message_id = Text()
    event_type = Text()
    payload = JSONB()
    status = Text(default="pending")
    attempts = Integer(default=0)
    generation = Integer(default=0)
    next_attempt_at = Timestamptz(null=True)
    last_attempt_at = Timestamptz(null=True)
    last_status_code = Integer(null=True)
    last_error = Text(null=True)
    delivered_at = Timestamptz(null=True)
    created_at = Timestamptz()


class WebhookAttempt(Table, tablename="webhook_attempt"):
    delivery_id = UUID()
    attempted_at = Timestamptz()
    status_code = Integer(null=True)
    error = Text(null=True)
    duration_ms = Integer(default=0)
