"""The fleet middleware on any Taskiq app: enqueue stamps, heartbeats, in-flight, withdrawal."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio
from taskiq import InMemoryBroker, TaskiqMessage
from taskiq_redis import ListQueueBroker

from taskiq_fleet import FleetMiddleware
from taskiq_fleet.contract import heartbeat, keys
from taskiq_fleet.contract.middleware import max_async_tasks_from_argv


def test_fleet_middleware_is_part_of_the_public_surface() -> None:
    import taskiq_fleet  # noqa: PLC0415

    assert "FleetMiddleware" in taskiq_fleet.__all__


async def test_a_sent_message_carries_its_enqueue_stamp_to_the_task() -> None:
    broker = InMemoryBroker().with_middlewares(FleetMiddleware(redis_url="redis://unused:1/0"))
    seen: dict[str, Any] = {}

    @broker.task
    async def probe() -> None:
        pass

    async def capture(message: TaskiqMessage) -> TaskiqMessage:
        seen.update(message.labels)
        return message

    broker.middlewares[0].pre_execute = capture  # type: ignore[method-assign]
    before_ms = time.time_ns() // 1_000_000
    await (await probe.kiq()).wait_result(timeout=5)

    assert before_ms <= seen[keys.LABEL_ENQUEUED_MS] <= time.time_ns() // 1_000_000


def test_capacity_comes_from_the_worker_command_line() -> None:
    assert max_async_tasks_from_argv(["taskiq", "worker", "--max-async-tasks", "7"]) == 7
    assert max_async_tasks_from_argv(["taskiq", "worker", "--max-async-tasks=12"]) == 12
    assert max_async_tasks_from_argv(["taskiq", "worker", "app:broker"]) == 100


def test_capacity_from_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(keys.ENV_CAPACITY, "3")

    assert FleetMiddleware().capacity == 3


def test_a_heartbeat_ttl_must_exceed_its_interval() -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        FleetMiddleware(interval_s=5, ttl_s=5)


async def test_a_broker_without_redis_needs_a_url() -> None:
    broker = InMemoryBroker().with_middlewares(FleetMiddleware())
    broker.is_worker_process = True

    with pytest.raises(TypeError, match=r"pass FleetMiddleware\(redis_url=...\)"):
        await broker.startup()


@pytest.mark.integration
async def test_a_worker_beats_with_pod_capacity_and_in_flight_then_withdraws(
    redis_url: str, redis_client: redis.asyncio.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(keys.ENV_POD_NAME, "pod-a")
    middleware = FleetMiddleware(capacity=5, interval_s=0.1, ttl_s=1.0)
    broker = ListQueueBroker(redis_url, queue_name="jobs").with_middlewares(middleware)
    broker.is_worker_process = True
    await broker.startup()

    async def beat_with(in_flight: int) -> heartbeat.Heartbeat | None:
        beats, _ = heartbeat.parse_all(await redis_client.hgetall(keys.heartbeat_key("jobs")))
        return next((b for b in beats if b.in_flight == in_flight), None)

    try:
        first = await beat_with(0)
        assert first is not None
        assert (first.pod, first.capacity) == ("pod-a", 5)

        message = TaskiqMessage(task_id="t", task_name="n", labels={}, args=[], kwargs={})
        middleware.pre_execute(message)
        deadline = time.monotonic() + 5
        while await beat_with(1) is None:
            assert time.monotonic() < deadline, "no heartbeat with the task in flight"
            await asyncio.sleep(0.05)
    finally:
        await broker.shutdown()

    assert await redis_client.hgetall(keys.heartbeat_key("jobs")) == {}
