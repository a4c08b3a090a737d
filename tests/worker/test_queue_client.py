"""The producer side (.delay became .kiq), with Taskiq's in-memory broker as the seam."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio
from taskiq import InMemoryBroker

from taskiq_fleet_worker.agent import DeterministicAgent
from taskiq_fleet_worker.queue_client import TaskiqQueueClient
from taskiq_fleet_worker.runtime import AgentRuntime, RuntimeConfig, run_agent_task
from taskiq_fleet_worker.sessions import SessionStore
from taskiq_fleet_worker.tasks import RUN_COMMAND_TASK_NAME
from tests.worker.harness import run_command, session_events


async def test_enqueue_returns_task_id() -> None:
    broker = InMemoryBroker()
    received: list[dict[str, Any]] = []

    @broker.task(task_name=RUN_COMMAND_TASK_NAME)
    async def record(command: dict[str, Any]) -> None:
        received.append(command)

    client = TaskiqQueueClient(task=record)
    task_id = await client.enqueue(command={"command": "run"}, dedup_key="k-1")
    await broker.wait_all()

    assert task_id
    assert received == [{"command": "run", "dedup_key": "k-1"}]


async def test_without_a_dedup_key_the_command_is_sent_as_given() -> None:
    broker = InMemoryBroker()
    received: list[dict[str, Any]] = []

    @broker.task(task_name=RUN_COMMAND_TASK_NAME)
    async def record(command: dict[str, Any]) -> None:
        received.append(command)

    await TaskiqQueueClient(task=record).enqueue(command={"command": "run"}, dedup_key=None)
    await broker.wait_all()

    assert received == [{"command": "run"}]


@pytest.mark.integration
async def test_a_command_sent_in_memory_runs_the_real_runtime(
    redis_client: redis.asyncio.Redis,
) -> None:
    broker = InMemoryBroker()
    runtime = AgentRuntime(
        store=SessionStore(redis_client),
        step=DeterministicAgent(),
        config=RuntimeConfig(worker="memory/1", work_ms=0),
    )

    @broker.task(task_name=RUN_COMMAND_TASK_NAME)
    async def run(command: dict[str, Any]) -> dict[str, Any]:
        return await run_agent_task(command, task_id="mem", runtime=runtime)

    command = run_command()
    task_id = await TaskiqQueueClient(task=run).enqueue(command=command, dedup_key="once")
    await broker.wait_all()
    result = await broker.result_backend.get_result(task_id)

    assert result.return_value["status"] == "completed"
    assert (await session_events(redis_client, command["session_id"]))[-1] == "run.completed"
