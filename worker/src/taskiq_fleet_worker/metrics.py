"""Prometheus metrics of a worker process, labelled by task name only.

``taskiq_fleet_worker_tasks_received_total``, ``..._tasks_succeeded_total``,
``..._tasks_failed_total``, ``..._task_duration_seconds`` (histogram) and
``..._in_flight_tasks``. Served on ``WORKER_METRICS_PORT`` by the worker process.

One process per pod (``--workers 1``) serves its own registry. With more worker
processes, set ``PROMETHEUS_MULTIPROC_DIR``: each process writes its values there and
whichever binds the port first serves the sum of all of them.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

logger = logging.getLogger("taskiq_fleet_worker.metrics")

PREFIX: Final = "taskiq_fleet_worker"
#: From a no-op (milliseconds) to a long agent run (minutes).
DURATION_BUCKETS_S: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class WorkerMetrics:
    """The worker's metric families, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("task_name",)
        self.registry = registry
        self.received = Counter(
            f"{PREFIX}_tasks_received", "Tasks this worker started.", labels, registry=registry
        )
        self.succeeded = Counter(
            f"{PREFIX}_tasks_succeeded", "Tasks that returned.", labels, registry=registry
        )
        self.failed = Counter(
            f"{PREFIX}_tasks_failed", "Tasks that raised or timed out.", labels, registry=registry
        )
        self.duration = Histogram(
            f"{PREFIX}_task_duration_seconds",
            "Time from start to end of a task.",
            labels,
            buckets=DURATION_BUCKETS_S,
            registry=registry,
        )
        self.in_flight = Gauge(
            f"{PREFIX}_in_flight_tasks",
            "Tasks running now.",
            labels,
            registry=registry,
            multiprocess_mode="livesum",
        )


class WorkerMetricsMiddleware(TaskiqMiddleware):
    """Counts and times every task a worker process runs."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        super().__init__()
        self.metrics = metrics
        self._started_s: dict[str, float] = {}

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        self.metrics.received.labels(message.task_name).inc()
        self.metrics.in_flight.labels(message.task_name).inc()
        self._started_s[message.task_id] = time.perf_counter()
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        started_s = self._started_s.pop(message.task_id, None)
        name = message.task_name
        self.metrics.in_flight.labels(name).dec()
        if started_s is not None:
            self.metrics.duration.labels(name).observe(time.perf_counter() - started_s)
        (self.metrics.failed if result.is_err else self.metrics.succeeded).labels(name).inc()


def serve(metrics: WorkerMetrics, *, port: int, addr: str) -> bool:
    """Serve ``metrics`` on ``addr:port``; ``False`` when another process has the port."""
    registry = metrics.registry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    try:
        start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:
        # Holds: in multiprocess mode a sibling serves the sum; otherwise say so once.
        logger.warning("metrics not served on %s:%d: %s", addr, port, exc)
        return False
    logger.info("metrics served on %s:%d", addr, port)
    return True
