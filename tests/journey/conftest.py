from tests.notifications.fixtures import fake, pipeline, redis, twilio_api
from tests.webhooks.test_webhooks import receiver

__all__ = ["fake", "pipeline", "receiver", "redis", "twilio_api"]
