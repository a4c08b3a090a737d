"""The broker the worker runs: which upstream class, and the configuration fixing its traps."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from taskiq.serializers import JSONSerializer
from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend, RedisStreamBroker

from taskiq_fleet import FleetMiddleware
from taskiq_fleet_worker.app import broker, build_broker
from taskiq_fleet_worker.metrics import WorkerMetricsMiddleware
from taskiq_fleet_worker.settings import RedisSettings, Settings, TaskiqSettings
from taskiq_fleet_worker.tasks import RUN_COMMAND_TASK_NAME, run_command_task


def _build(**taskiq: Any) -> Any:
    settings = Settings(
        redis=RedisSettings(url="redis://r:6379/0"), taskiq=TaskiqSettings(**taskiq)
    )
    return build_broker(settings, metrics_registry=CollectorRegistry())


def test_taskiq_broker_is_configured() -> None:
    assert broker is not None
    assert broker.find_task(RUN_COMMAND_TASK_NAME) is run_command_task


def test_the_default_broker_is_a_list_queue_on_the_default_queue() -> None:
    built = _build()

    assert isinstance(built, ListQueueBroker)
    assert built.queue_name == "default"


def test_blocking_connections_have_no_socket_timeout_and_keep_alive() -> None:
    options = _build().connection_pool.connection_kwargs

    assert options["socket_timeout"] is None
    assert options["socket_keepalive"] is True


def test_results_are_json_expire_and_live_under_a_prefix() -> None:
    backend = _build(result_ttl_s=600).result_backend

    assert isinstance(backend, RedisAsyncResultBackend)
    assert isinstance(backend.serializer, JSONSerializer)
    assert backend.result_ex_time == 600
    assert backend.prefix_str


def test_the_stream_broker_reads_from_the_start_and_never_drops_unacked_entries() -> None:
    built = _build(
        broker_kind="stream", consumer_group="fleet", reclaim_idle_s=90, task_timeout_s=60
    )

    assert isinstance(built, RedisStreamBroker)
    assert built.consumer_group_name == "fleet"
    assert built.consumer_id == "0"
    assert built.mkstream is True
    assert built.maxlen is None
    assert built.count == 1
    assert built.idle_timeout == 90_000
    assert built.reclaim_interval_s < 90


def test_the_fleet_middleware_and_worker_metrics_are_installed() -> None:
    kinds = {type(m) for m in _build().middlewares}

    assert {FleetMiddleware, WorkerMetricsMiddleware} <= kinds


def test_the_run_command_task_carries_the_run_timeout() -> None:
    assert run_command_task.labels["timeout"] > 0
