"""The operator's and the supervisor's Prometheus metrics, defined once.

Values are set by the poll loop as it goes; a scrape reads what the last poll saw and
never waits on Redis or the API server. Labels stay bounded: namespace, pool, queue,
and a small set of reasons and directions, never a task or pod id. The local
supervisor reports with ``namespace="local"``.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from taskiq_fleet import __version__

PREFIX = "taskiq_fleet"
POOL_LABELS = ("namespace", "pool")


@dataclass(frozen=True, slots=True)
class PoolKey:
    namespace: str
    pool: str


class FleetMetrics:
    """All metric families on one registry (a fresh one per test, the global one in prod)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.info = Info(f"{PREFIX}_build", "taskiq-fleet build information.", registry=registry)
        self.info.info({"version": __version__})
        self.queue_waiting = Gauge(
            f"{PREFIX}_queue_waiting_tasks",
            "Tasks waiting in a pool's queue, not yet handed to a worker.",
            [*POOL_LABELS, "queue"],
            registry=registry,
        )
        self.waiting = Gauge(
            f"{PREFIX}_pool_waiting_tasks",
            "Weighted sum of waiting tasks over a pool's queues.",
            POOL_LABELS,
            registry=registry,
        )
        self.in_flight = Gauge(
            f"{PREFIX}_pool_in_flight_tasks",
            "Weighted sum of tasks held by workers and not finished.",
            POOL_LABELS,
            registry=registry,
        )
        self.oldest_age = Gauge(
            f"{PREFIX}_pool_oldest_task_age_seconds",
            "Age of the oldest task not yet finished, where the broker tells it.",
            POOL_LABELS,
            registry=registry,
        )
        self.replicas = Gauge(
            f"{PREFIX}_pool_replicas",
            "Worker replicas by kind: desired (engine), current, ready, min, max.",
            [*POOL_LABELS, "kind"],
            registry=registry,
        )
        self.broker_up = Gauge(
            f"{PREFIX}_pool_broker_up",
            "1 when the last probe of the pool's Redis succeeded, else 0.",
            POOL_LABELS,
            registry=registry,
        )
        self.last_poll = Gauge(
            f"{PREFIX}_pool_last_poll_timestamp_seconds",
            "Unix time of the pool's last completed poll.",
            POOL_LABELS,
            registry=registry,
        )
        self.scale_events = Counter(
            f"{PREFIX}_scale_events",
            "Replica changes made, by direction (up, down) and reason.",
            [*POOL_LABELS, "direction", "reason"],
            registry=registry,
        )
        self.probe_errors = Counter(
            f"{PREFIX}_probe_errors",
            "Failed queue probes, by kind (temporary, permanent).",
            [*POOL_LABELS, "kind"],
            registry=registry,
        )
        self.probe_duration = Histogram(
            f"{PREFIX}_probe_duration_seconds",
            "Time to read one Redis server's queues in one pipelined round trip.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        self.decision_lag = Histogram(
            f"{PREFIX}_decision_lag_seconds",
            "Delay between a poll's scheduled time and its decision being applied.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
        self.errors = Counter(
            f"{PREFIX}_reconcile_errors",
            "Errors while applying a decision or reconciling a pool, by stage.",
            [*POOL_LABELS, "stage"],
            registry=registry,
        )

    def forget(self, key: PoolKey) -> None:
        """Drop a deleted pool's series, so dashboards and alerts stop showing it."""
        pool = {"namespace": key.namespace, "pool": key.pool}
        for family in (self.queue_waiting, self.waiting, self.in_flight, self.oldest_age,
                       self.replicas, self.broker_up, self.last_poll):  # fmt: skip
            family.remove_by_labels(pool)
