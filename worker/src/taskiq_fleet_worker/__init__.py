"""The agent runtime on Taskiq with Redis, as every taskiq-fleet worker pod runs it."""
