"""taskiq-fleet demo: an embedded Redis, the local supervisor, the agent worker and a burst."""
