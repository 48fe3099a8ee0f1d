from tests.notifications.fixtures import fake, pipeline, redis, twilio_api

__all__ = ["fake", "pipeline", "redis", "twilio_api"]
