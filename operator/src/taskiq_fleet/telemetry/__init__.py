"""Prometheus metrics and structured logs of the operator and the supervisor."""
