"""Reading list queues (taskiq-redis ListQueueBroker) and the heartbeats of their workers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from taskiq_redis import ListQueueBroker

from taskiq_fleet.contract import heartbeat, keys
from taskiq_fleet.probes import BrokerKind, ProbeError, QueueRef, RedisProbe
from tests.probes.conftest import put_heartbeat, server_ms

pytestmark = pytest.mark.integration


def _list(name: str, weight: float = 1.0) -> QueueRef:
    return QueueRef(kind=BrokerKind.LIST, name=name, weight=weight)


@pytest.fixture
async def broker(redis_url: str) -> AsyncIterator[ListQueueBroker]:
    broker = ListQueueBroker(redis_url, queue_name="orders")

    @broker.task(task_name="tests.noop")
    async def noop() -> None:
        """Never runs: the probe only counts it."""

    await broker.startup()
    try:
        yield broker
    finally:
        await broker.shutdown()


async def _send(
    broker: ListQueueBroker, *, count: int, queue: str = "orders", **labels: object
) -> None:
    task = broker.find_task("tests.noop")
    assert task is not None
    for _ in range(count):
        await task.kicker().with_labels(queue_name=queue, **labels).kiq()


async def test_waiting_is_the_length_of_the_list(
    broker: ListQueueBroker, probe: RedisProbe
) -> None:
    await _send(broker, count=7)
    reading = await probe.read([_list("orders")])
    assert reading.queues[0].waiting == 7
    assert reading.waiting == 7


async def test_queues_of_a_pool_add_up_by_weight(
    broker: ListQueueBroker, probe: RedisProbe
) -> None:
    await _send(broker, count=4, queue="orders")
    await _send(broker, count=3, queue="mail")
    reading = await probe.read([_list("orders", weight=2.0), _list("mail", weight=0.5)])
    assert [q.waiting for q in reading.queues] == [4, 3]
    assert reading.waiting == 9.5


async def test_the_oldest_task_age_comes_from_its_enqueue_label(
    broker: ListQueueBroker, probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    now_ms = await server_ms(redis_client)
    await _send(broker, count=1, **{keys.LABEL_ENQUEUED_MS: now_ms - 42_000})
    await _send(broker, count=2, **{keys.LABEL_ENQUEUED_MS: now_ms - 1_000})
    reading = await probe.read([_list("orders")])
    age_s = reading.queues[0].oldest_age_s
    assert age_s is not None
    assert 42 <= age_s < 44
    assert reading.oldest_age_s == age_s


async def test_a_task_without_the_enqueue_label_has_no_age_and_a_warning(
    broker: ListQueueBroker, probe: RedisProbe
) -> None:
    await _send(broker, count=1)
    queue = (await probe.read([_list("orders")])).queues[0]
    assert queue.waiting == 1
    assert queue.oldest_age_s is None
    assert "no 'fleet_enqueued_ms' label" in queue.warnings[0]


async def test_a_message_that_is_not_taskiq_json_has_no_age_and_a_warning(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    await redis_client.lpush("orders", b"\x80\x04pickled")
    queue = (await probe.read([_list("orders")])).queues[0]
    assert queue.waiting == 1
    assert queue.oldest_age_s is None
    assert "not a taskiq JSON message" in queue.warnings[0]


async def test_an_unreadable_enqueue_stamp_has_no_age_and_a_warning(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    message = {"task_id": "1", "labels": {keys.LABEL_ENQUEUED_MS: "yesterday"}}
    await redis_client.lpush("orders", json.dumps(message))
    queue = (await probe.read([_list("orders")])).queues[0]
    assert queue.oldest_age_s is None
    assert "unreadable enqueue stamp" in queue.warnings[0]


async def test_a_list_that_does_not_exist_reads_as_zero_with_a_warning(probe: RedisProbe) -> None:
    queue = (await probe.read([_list("never-used")])).queues[0]
    assert (queue.waiting, queue.in_flight, queue.oldest_age_s) == (0, 0, None)
    assert "'never-used' does not exist" in queue.warnings[0]


async def test_an_empty_list_that_workers_serve_reads_as_zero_without_a_warning(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    await put_heartbeat(redis_client, queue="orders", worker="w1", in_flight=0, capacity=10)
    queue = (await probe.read([_list("orders")])).queues[0]
    assert queue.waiting == 0
    assert queue.warnings == ()


async def test_a_key_of_another_type_is_a_permanent_error_naming_the_key(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    await redis_client.hset("orders", "field", "value")
    with pytest.raises(ProbeError, match="key 'orders' holds a hash, not a list") as caught:
        await probe.read([_list("orders")])
    assert not caught.value.temporary


async def test_in_flight_capacity_and_workers_come_from_live_heartbeats(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    beat = heartbeat.Heartbeat(
        worker_id="w1", pod="pod-a", pid=10, in_flight=3, capacity=10, ttl_ms=6000
    )
    await heartbeat.publish(redis_client, queue="orders", heartbeat=beat)
    await put_heartbeat(redis_client, queue="orders", worker="w2", in_flight=5, capacity=8)
    queue = (await probe.read([_list("orders")])).queues[0]
    assert (queue.in_flight, queue.capacity, queue.workers) == (8, 18, 2)


async def test_stale_heartbeats_of_dead_workers_are_ignored(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    await put_heartbeat(redis_client, queue="orders", worker="live", in_flight=2, capacity=4)
    await put_heartbeat(
        redis_client, queue="orders", worker="dead", in_flight=9, capacity=9, age_ms=60_000
    )
    queue = (await probe.read([_list("orders")])).queues[0]
    assert (queue.in_flight, queue.capacity, queue.workers) == (2, 4, 1)


async def test_a_heartbeat_that_cannot_be_decoded_is_skipped_with_a_warning(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    await put_heartbeat(redis_client, queue="orders", worker="ok", in_flight=1, capacity=4)
    await redis_client.hset(keys.heartbeat_key("orders"), "garbled", "{not json")
    queue = (await probe.read([_list("orders")])).queues[0]
    assert queue.in_flight == 1
    assert any("'garbled'" in w for w in queue.warnings)


async def test_in_flight_work_adds_up_by_weight_too(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    await put_heartbeat(redis_client, queue="orders", worker="a", in_flight=4, capacity=4)
    await put_heartbeat(redis_client, queue="mail", worker="b", in_flight=2, capacity=4)
    reading = await probe.read([_list("orders", weight=3), _list("mail")])
    assert reading.in_flight == 14
