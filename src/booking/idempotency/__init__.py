"""Idempotency-Key: a retried POST/PATCH returns the first answer, never a second effect."""
