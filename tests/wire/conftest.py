from tests.webhooks.test_webhooks import receiver

__all__ = ["receiver"]
