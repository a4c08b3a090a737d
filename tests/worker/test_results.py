"""A run's task result reads the same whether the run stored it or the result backend did."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio
from prometheus_client import CollectorRegistry
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.receiver import Receiver
from taskiq.serializers import JSONSerializer

from taskiq_fleet_worker.app import build_broker
from taskiq_fleet_worker.results import FleetResultBackend, encode_result, mark_stored, result_key
from taskiq_fleet_worker.runtime import close_default_runtime
from taskiq_fleet_worker.settings import Settings, get_settings
from taskiq_fleet_worker.tasks import RUN_COMMAND_TASK_NAME, run_command_task
from tests.worker.harness import QUEUE, producer, run_command

pytestmark = pytest.mark.integration


class ReadyAtReturn(TaskiqMiddleware):
    """Notes whether each task's result could be read as soon as the task returned."""

    def __init__(self) -> None:
        super().__init__()
        self.ready: dict[str, bool] = {}

    async def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        backend = self.broker.result_backend
        self.ready[message.task_id] = await backend.is_result_ready(message.task_id)


def _without_time(stored: bytes) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in json.loads(stored).items() if k != "execution_time"]


def _db(url: str, db: int) -> str:
    return urlsplit(url)._replace(path=f"/{db}").geturl()


@pytest.fixture
def worker_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Settings]]:
    """Settings from the environment, as a worker process reads them."""

    def configure(**env: str) -> Settings:
        for name in list(os.environ):
            if name.startswith(("TASKIQ_", "AGENT_", "WORKER_", "REDIS_")):
                monkeypatch.delenv(name)
        for name, value in (env | {"AGENT_WORK_MS": "0", "WORKER_METRICS_PORT": "0"}).items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        return get_settings()

    yield configure
    get_settings.cache_clear()


async def _receive(raw: bytes, settings: Settings) -> tuple[TaskiqResult[Any], bytes, bool]:
    """Run one message through Taskiq's receiver with the worker's own task function."""
    broker = build_broker(settings, metrics_registry=CollectorRegistry())
    broker.register_task(
        run_command_task.original_func,
        task_name=RUN_COMMAND_TASK_NAME,
        timeout=settings.taskiq.task_timeout_s,
    )
    ready = ReadyAtReturn()
    broker.add_middlewares(ready)
    await broker.startup()
    try:
        await Receiver(broker, max_async_tasks=1, run_startup=False).callback(raw, raise_err=True)
        task_id = json.loads(raw)["task_id"]
        result: TaskiqResult[Any] = await broker.result_backend.get_result(task_id)
        client = redis.asyncio.Redis.from_url(settings.taskiq_result_backend_url)
        try:
            stored = await client.get(result_key(task_id))
            assert 0 < await client.ttl(result_key(task_id)) <= settings.taskiq.result_ttl_s
        finally:
            await client.aclose()
        return result, stored, ready.ready[task_id]
    finally:
        await close_default_runtime()
        await broker.shutdown()


async def test_a_result_stored_with_the_run_reads_as_the_backends_own(
    redis_url: str, worker_environment: Callable[..., Settings]
) -> None:
    shared, sessions, results = _db(redis_url, 2), _db(redis_url, 3), _db(redis_url, 4)
    for url in (shared, sessions, results):
        flushing = redis.asyncio.Redis.from_url(url)
        await flushing.flushdb()
        await flushing.aclose()
    broker, task = producer(redis_url)
    await broker.startup()
    await task.kiq(run_command(steps=2, input={"q": "why"}))
    await broker.shutdown()
    client = redis.asyncio.Redis.from_url(redis_url)
    _, raw = await client.brpop([QUEUE], timeout=5)
    await client.aclose()

    # Sessions and results on one database: the run stores the result as it finishes.
    with_run, with_run_json, ready_with_run = await _receive(
        raw, worker_environment(REDIS_URL=shared, TASKIQ_BROKER_URL=redis_url)
    )
    # Results on a database of their own: the receiver hands the result to the backend.
    by_backend, by_backend_json, ready_by_backend = await _receive(
        raw,
        worker_environment(
            REDIS_URL=sessions, TASKIQ_BROKER_URL=redis_url, TASKIQ_RESULT_BACKEND_URL=results
        ),
    )

    assert (ready_with_run, ready_by_backend) == (True, False)
    assert with_run.return_value["status"] == "completed"
    assert with_run.model_dump(exclude={"execution_time"}) == by_backend.model_dump(
        exclude={"execution_time"}
    )
    # Byte for byte the same JSON, key order included, but for the measured time.
    assert _without_time(with_run_json) == _without_time(by_backend_json)
    assert with_run.execution_time == round(with_run.execution_time, 2) >= 0


async def test_a_redelivered_task_that_finished_keeps_its_stored_result(
    redis_url: str, worker_environment: Callable[..., Settings]
) -> None:
    shared = _db(redis_url, 5)
    flushing = redis.asyncio.Redis.from_url(shared)
    await flushing.flushdb()
    await flushing.aclose()
    broker, task = producer(redis_url)
    await broker.startup()
    await task.kiq(run_command(steps=2))
    await broker.shutdown()
    client = redis.asyncio.Redis.from_url(redis_url)
    _, raw = await client.brpop([QUEUE], timeout=5)
    await client.aclose()
    settings = worker_environment(REDIS_URL=shared, TASKIQ_BROKER_URL=redis_url)

    first, _, _ = await _receive(raw, settings)
    again, _, _ = await _receive(raw, settings)

    assert first.return_value["status"] == "completed"
    assert again.return_value == first.return_value


async def test_the_backend_writes_any_result_but_the_one_a_run_stored(redis_url: str) -> None:
    backend: FleetResultBackend[Any] = FleetResultBackend(redis_url, result_ttl_s=60)
    returned = {"status": "completed"}
    try:
        mark_stored("replaced", returned)
        await backend.set_result(
            "replaced", TaskiqResult(is_err=False, return_value=dict(returned), execution_time=0)
        )
        mark_stored("failed", returned)
        await backend.set_result(
            "failed", TaskiqResult(is_err=True, return_value=returned, execution_time=0)
        )
        mark_stored("kept", returned)
        await backend.set_result(
            "kept", TaskiqResult(is_err=False, return_value=returned, execution_time=0)
        )

        assert await backend.is_result_ready("replaced")
        assert await backend.is_result_ready("failed")
        assert not await backend.is_result_ready("kept")
    finally:
        await backend.shutdown()


def test_a_stored_result_is_encoded_as_the_model_would_encode_it() -> None:
    body = {"status": "completed", "session_id": "s", "steps": 3, "note": "naïve ✓"}
    labels = {"task_name": RUN_COMMAND_TASK_NAME, "enqueued_ms": 1_700_000_000_000, "x": None}
    model: TaskiqResult[Any] = TaskiqResult(
        is_err=False, log=None, return_value=body, execution_time=0.25, error=None, labels=labels
    )

    assert encode_result(body, labels=labels, execution_time_s=0.2512) == (
        JSONSerializer().dumpb(model.model_dump(mode="json"))
    )
