"""The Taskiq broker of the agent worker, built from the environment.

``taskiq worker taskiq_fleet_worker.app:broker taskiq_fleet_worker.tasks`` runs it;
producers import the same ``broker`` (and ``await broker.startup()``) to send.

``TASKIQ_BROKER_KIND`` picks the queue: ``list`` (``ListQueueBroker``, at most once:
a task held by a killed worker is lost) or ``stream`` (``RedisStreamBroker``, at
least once: a killed worker's tasks are reclaimed, and the runtime's dedup claims make
the repeat harmless). Results are JSON and expire after ``TASKIQ_RESULT_TTL_S``.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import REGISTRY, CollectorRegistry
from taskiq import AsyncBroker, TaskiqEvents, TaskiqState

from taskiq_fleet.contract.middleware import FleetMiddleware
from taskiq_fleet_worker import metrics
from taskiq_fleet_worker.brokers import FleetListBroker, FleetStreamBroker
from taskiq_fleet_worker.logs import configure_logging
from taskiq_fleet_worker.results import FleetResultBackend
from taskiq_fleet_worker.runtime import close_default_runtime, default_runtime
from taskiq_fleet_worker.settings import Settings, get_settings

logger = logging.getLogger("taskiq_fleet_worker.app")


def build_broker(
    settings: Settings, *, metrics_registry: CollectorRegistry = REGISTRY
) -> AsyncBroker:
    """The broker ``settings`` describe, with results, fleet middleware and metrics."""
    kind = settings.taskiq.broker_kind
    queue = settings.taskiq.default_queue
    broker: FleetListBroker | FleetStreamBroker
    if kind == "stream":
        broker = FleetStreamBroker(
            settings.taskiq_broker_url,
            queue_name=queue,
            consumer_group_name=settings.taskiq.consumer_group,
            idle_timeout_s=settings.taskiq.reclaim_idle_s,
        )
    else:
        broker = FleetListBroker(settings.taskiq_broker_url, queue_name=queue)
    broker.with_result_backend(
        FleetResultBackend(
            settings.taskiq_result_backend_url, result_ttl_s=settings.taskiq.result_ttl_s
        )
    )
    worker_metrics = metrics.WorkerMetrics(metrics_registry)
    broker.add_middlewares(FleetMiddleware(), metrics.WorkerMetricsMiddleware(worker_metrics))

    async def worker_startup(_state: TaskiqState) -> None:
        configure_logging(log_format=settings.worker.log_format)
        if not type(asyncio.get_running_loop()).__module__.startswith("uvloop"):
            # The stdlib loop is not woken by SIGTERM: an idle worker would not stop.
            logger.warning("uvloop is not installed: install taskiq[uv] for prompt shutdowns")
        if settings.worker.metrics_port:
            metrics.serve(
                worker_metrics, port=settings.worker.metrics_port, addr=settings.worker.metrics_addr
            )
        runtime = default_runtime()
        logger.info(
            "agent worker ready: %s queue %r on %s, agent step %s",
            kind,
            queue,
            broker.shown_url,
            type(runtime.step).__name__,
        )

    async def worker_shutdown(_state: TaskiqState) -> None:
        await close_default_runtime()

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, worker_startup)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, worker_shutdown)
    return broker


broker = build_broker(get_settings())
