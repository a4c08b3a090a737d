"""The control loop against a real Redis-compatible server and real Taskiq messages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from prometheus_client import CollectorRegistry
from taskiq_redis import ListQueueBroker

from taskiq_fleet.control import PoolController
from taskiq_fleet.probes import RedisProbe
from taskiq_fleet.telemetry.metrics import FleetMetrics, PoolKey
from tests.control.fakes import QUEUE, FakeClock, FakeTarget, quick_policy
from tests.fixtures.redis import RedisHandle

pytestmark = pytest.mark.integration


@pytest.fixture
async def probe(redis_url: str) -> AsyncIterator[RedisProbe]:
    probe = RedisProbe(redis_url, connect_timeout_s=0.5, read_timeout_s=0.5)
    try:
        yield probe
    finally:
        await probe.aclose()


async def enqueue(redis_url: str, *, count: int) -> None:
    broker = ListQueueBroker(redis_url, queue_name=QUEUE.name)

    @broker.task(task_name="tests.noop")
    async def noop() -> None:
        """Never runs: no worker listens in this test."""

    await broker.startup()
    try:
        for _ in range(count):
            await noop.kiq()
    finally:
        await broker.shutdown()


def controller_for(probe: RedisProbe, target: FakeTarget, clock: FakeClock) -> PoolController:
    return PoolController(
        key=PoolKey(namespace="local", pool="agents"),
        policy=quick_policy(max_replicas=8),
        queues=[QUEUE],
        probe=probe,
        target=target,
        metrics=FleetMetrics(CollectorRegistry()),
        clock=clock,
    )


async def test_waiting_tasks_in_redis_scale_the_target_out_and_an_empty_queue_in(
    redis_url: str, probe: RedisProbe
) -> None:
    target = FakeTarget(current=1)
    clock = FakeClock()
    controller = controller_for(probe, target, clock)
    await enqueue(redis_url, count=45)

    out = await controller.poll()
    assert out.broker_reachable
    assert out.reading is not None
    assert out.reading.waiting == 45
    assert (out.current, out.desired, target.current) == (1, 5, 5)

    # The queue is emptied by someone else; with no heartbeats nothing is in flight.
    await empty_queue(redis_url)
    clock.advance(5.0)
    back = await controller.poll()
    assert (back.current, back.desired, target.current) == (5, 1, 1)
    assert ("mark_idle_first", 4) in target.calls


async def test_a_stopped_redis_holds_the_target_until_it_returns(
    own_redis_server: RedisHandle,
) -> None:
    probe = RedisProbe(own_redis_server.url, connect_timeout_s=0.5, read_timeout_s=0.5)
    target = FakeTarget(current=3)
    clock = FakeClock()
    controller = controller_for(probe, target, clock)
    try:
        await enqueue(own_redis_server.url, count=30)
        assert (await controller.poll()).desired == 3

        own_redis_server.stop()
        clock.advance(2.0)
        down = await controller.poll()
        assert not down.broker_reachable
        assert down.probe_error_kind == "temporary"
        assert (down.desired, target.current) == (3, 3)

        own_redis_server.start()
        await enqueue(own_redis_server.url, count=60)
        clock.advance(2.0)
        up = await controller.poll()
        assert up.broker_reachable
        assert target.current == 6
    finally:
        await probe.aclose()


async def empty_queue(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await client.delete(QUEUE.name)
    finally:
        await client.aclose()
