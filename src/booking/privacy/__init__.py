"""Customers' personal data on request (GDPR): export, erasure, retention."""
