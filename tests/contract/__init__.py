"""Tests of the worker-operator contract: session events and the fleet middleware."""
