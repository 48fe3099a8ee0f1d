"""The customer's self-service page behind the link in every SMS (server-rendered HTML)."""
