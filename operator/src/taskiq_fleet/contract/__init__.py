"""The contract between fleet workers and the operator.

Workers (any Taskiq app with :class:`~taskiq_fleet.contract.middleware.FleetMiddleware`)
write heartbeats and enqueue stamps; the operator's probes read them together with
the broker's own queue structures. Every Redis key, label and annotation name both
sides rely on is defined in :mod:`taskiq_fleet.contract.keys`, and nowhere else.
"""
