"""What the operator sees: structured logs with request ids, Prometheus metrics, liveness."""
