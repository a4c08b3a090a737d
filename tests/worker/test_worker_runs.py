"""A real ``taskiq worker`` runs agent commands: results, events, dedup, cancel, metrics."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio

from taskiq_fleet.contract import events, heartbeat, keys
from taskiq_fleet.redis_server import LocalRedisServer, free_port
from taskiq_fleet_worker.results import RESULT_PREFIX
from tests.worker.harness import (
    QUEUE,
    WorkerProcess,
    eventually,
    producer,
    run_command,
    session_events,
    start_worker,
    wait_exit,
    wait_ready,
)

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class SharedWorker:
    url: str
    worker: WorkerProcess
    metrics_port: int


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedWorker]:
    """One list worker (concurrency 4, JSON logs, metrics) on a server of its own."""
    with LocalRedisServer() as server:
        port = free_port()
        worker = start_worker(
            server.url,
            tmp_path=tmp_path_factory.mktemp("shared-worker"),
            concurrency=4,
            WORKER_METRICS_PORT=str(port),
            WORKER_METRICS_ADDR="127.0.0.1",
            WORKER_LOG_FORMAT="json",
        )
        try:

            async def ready() -> None:
                client = redis.asyncio.Redis.from_url(server.url)
                try:
                    await wait_ready(client, worker)
                finally:
                    await client.aclose()

            asyncio.run(ready())
            yield SharedWorker(url=server.url, worker=worker, metrics_port=port)
            worker.signal(signal.SIGTERM)
            assert wait_exit(worker, timeout_s=15) == 0, worker.log()[-3000:]
        finally:
            worker.stop()


@pytest.fixture
async def client(shared: SharedWorker) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(shared.url)
    yield connection
    await connection.aclose()


@pytest.fixture
async def send(shared: SharedWorker) -> AsyncIterator[Any]:
    broker, task = producer(shared.url)
    await broker.startup()
    yield task
    await broker.shutdown()


async def test_a_run_returns_its_result_and_streams_started_steps_completed(
    send: Any, client: redis.asyncio.Redis, shared: SharedWorker
) -> None:
    command = run_command(steps=3)

    sent = await send.kiq(command)
    result = await sent.wait_result(timeout=20)

    assert not result.is_err, result.error
    assert result.return_value["status"] == "completed"
    assert result.return_value["steps"] == 3
    history = await events.read_session(client, session_id=command["session_id"])
    assert [e.type for e in history] == ["run.started", "step", "step", "step", "run.completed"]
    started = history[0]
    assert started.task_id == sent.task_id
    assert started.int_field(events.F_ENQUEUED_MS) is not None
    assert started.fields[events.F_WORKER].startswith(f"{shared.worker.name}/")
    stored = await client.get(f"{RESULT_PREFIX}:{sent.task_id}")
    assert json.loads(stored)["return_value"]["status"] == "completed"
    assert 0 < await client.ttl(f"{RESULT_PREFIX}:{sent.task_id}") <= 86_400


async def test_two_commands_with_one_dedup_key_run_once(
    send: Any, client: redis.asyncio.Redis
) -> None:
    command = run_command(dedup_key="order-42", work_ms=300)

    first, second = await send.kiq(command), await send.kiq(command)
    results = [(await t.wait_result(timeout=20)).return_value for t in (first, second)]

    assert sorted(r["status"] for r in results) == ["completed", "deduplicated"]
    history = await session_events(client, command["session_id"])
    assert history.count("run.started") == 1
    assert history.count("run.completed") == 1
    assert history.count("run.deduplicated") == 1


async def test_a_cancel_stops_a_run_at_a_step_boundary(
    send: Any, client: redis.asyncio.Redis
) -> None:
    command = run_command(steps=20, work_ms=4000)
    running = await send.kiq(command)
    await eventually(
        lambda: _has(client, command["session_id"], "step"), timeout_s=20, what="the first step"
    )

    await send.kiq({"command": "cancel", "session_id": command["session_id"]})
    result = (await running.wait_result(timeout=20)).return_value

    assert result["status"] == "cancelled"
    assert result["steps"] < 20
    history = await session_events(client, command["session_id"])
    assert history[-1] == "run.cancelled"
    assert not await client.exists(keys.session_cancel_key(command["session_id"]))


async def test_the_heartbeat_reports_capacity_and_work_in_flight(
    send: Any, client: redis.asyncio.Redis, shared: SharedWorker
) -> None:
    running = await send.kiq(run_command(steps=4, work_ms=2000))

    async def busy_beat() -> heartbeat.Heartbeat | None:
        beats, _ = heartbeat.parse_all(await client.hgetall(keys.heartbeat_key(QUEUE)))
        return next((b for b in beats if b.pod == shared.worker.name and b.in_flight), None)

    beat = await eventually(busy_beat, timeout_s=10, what="a heartbeat with a task in flight")
    assert beat.capacity == 4
    assert beat.in_flight == 1
    await running.wait_result(timeout=20)


async def test_metrics_count_tasks_by_name(send: Any, shared: SharedWorker) -> None:
    await (await send.kiq(run_command())).wait_result(timeout=20)

    url = f"http://127.0.0.1:{shared.metrics_port}/metrics"
    with await asyncio.to_thread(urllib.request.urlopen, url, timeout=5) as response:
        body = response.read().decode()

    name = 'task_name="tasks.agent.run_command"'
    assert f"taskiq_fleet_worker_tasks_received_total{{{name}}}" in body
    assert f"taskiq_fleet_worker_tasks_succeeded_total{{{name}}}" in body
    assert f'taskiq_fleet_worker_task_duration_seconds_bucket{{le="+Inf",{name}}}' in body
    assert f"taskiq_fleet_worker_in_flight_tasks{{{name}}}" in body


async def test_log_lines_are_json_with_task_and_session_ids(
    send: Any, shared: SharedWorker
) -> None:
    command = run_command()
    sent = await send.kiq(command)
    await sent.wait_result(timeout=20)

    async def logged() -> dict[str, Any] | None:
        for line in shared.worker.log().splitlines():
            if line.startswith("{") and command["session_id"] in line:
                entry: dict[str, Any] = json.loads(line)
                return entry
        return None

    entry = await eventually(logged, timeout_s=5, what="a JSON log line of the run")
    assert entry["task_id"] == sent.task_id
    assert entry["session_id"] == command["session_id"]
    assert list(entry)[:4] == ["ts", "level", "logger", "message"]


async def _has(client: redis.asyncio.Redis, session_id: str, kind: str) -> bool:
    return kind in await session_events(client, session_id)
