"""Tests of the agent worker: its settings, runtime, brokers and real worker processes."""
