"""Signed partner webhooks (Standard Webhooks), delivered through the outbox and arq."""
