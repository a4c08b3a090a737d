"""Shared fixtures: a real Redis-compatible server and a real Kubernetes control plane."""

pytest_plugins = ["tests.fixtures.redis", "tests.fixtures.kube"]
