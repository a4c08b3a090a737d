"""Reading stream queues (taskiq-redis RedisStreamBroker): group lag, pending, age."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from taskiq_redis import RedisStreamBroker

from taskiq_fleet.probes import BrokerKind, ProbeError, QueueRef, RedisProbe
from taskiq_fleet.probes.reading import LAG_COUNT_CAP
from taskiq_fleet.redis_server import LocalRedisServer
from tests.probes.conftest import put_heartbeat, server_ms

pytestmark = pytest.mark.integration


def _stream(name: str = "jobs", *, group: str = "taskiq", weight: float = 1.0) -> QueueRef:
    return QueueRef(kind=BrokerKind.STREAM, name=name, weight=weight, consumer_group=group)


@pytest.fixture
async def redis_client(stream_redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(stream_redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def probe(stream_redis_url: str) -> AsyncIterator[RedisProbe]:
    probe = RedisProbe(stream_redis_url)
    try:
        yield probe
    finally:
        await probe.aclose()


@pytest.fixture
async def broker(stream_redis_url: str) -> AsyncIterator[RedisStreamBroker]:
    broker = RedisStreamBroker(stream_redis_url, queue_name="jobs", xread_block=100)

    @broker.task(task_name="tests.noop")
    async def noop() -> None:
        """Never runs: the probe only counts it."""

    await broker.startup()
    try:
        yield broker
    finally:
        await broker.shutdown()


async def _send(broker: RedisStreamBroker, *, count: int) -> None:
    task = broker.find_task("tests.noop")
    assert task is not None
    for _ in range(count):
        await task.kiq()


async def _fetch(broker: RedisStreamBroker, *, count: int, ack: bool) -> None:
    """Take ``count`` messages the way a taskiq worker does; ack them or not."""
    taken = 0
    messages = broker.listen()
    async for message in messages:
        if ack:
            await message.ack()  # type: ignore[union-attr]
        taken += 1
        if taken == count:
            break
    await messages.aclose()  # type: ignore[attr-defined]


async def test_waiting_is_the_groups_lag(broker: RedisStreamBroker, probe: RedisProbe) -> None:
    await _send(broker, count=12)
    queue = (await probe.read([_stream()])).queues[0]
    assert (queue.waiting, queue.in_flight) == (12, 0)
    assert queue.warnings == ()


async def test_unacknowledged_messages_are_in_flight_not_waiting(
    broker: RedisStreamBroker, probe: RedisProbe
) -> None:
    await _send(broker, count=10)
    await _fetch(broker, count=10, ack=False)
    await _send(broker, count=2)
    queue = (await probe.read([_stream()])).queues[0]
    assert (queue.waiting, queue.in_flight) == (2, 10)


async def test_a_killed_consumers_pending_entries_stay_in_flight(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    await redis_client.xgroup_create("jobs", "taskiq", id="$", mkstream=True)
    for n in range(5):
        await redis_client.xadd("jobs", {"data": str(n)})
    await redis_client.xreadgroup("taskiq", "killed-worker", {"jobs": ">"}, count=3)
    queue = (await probe.read([_stream()])).queues[0]
    assert (queue.waiting, queue.in_flight) == (2, 3)


async def test_acknowledged_history_is_not_work(
    broker: RedisStreamBroker, probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    await _send(broker, count=30)
    await _fetch(broker, count=30, ack=True)
    assert await redis_client.xlen("jobs") == 30
    queue = (await probe.read([_stream()])).queues[0]
    assert (queue.waiting, queue.in_flight, queue.oldest_age_s) == (0, 0, None)


async def test_long_acknowledged_history_with_deletions_reads_as_zero_waiting(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    await redis_client.xgroup_create("jobs", "taskiq", id="$", mkstream=True)
    ids = [await redis_client.xadd("jobs", {"data": str(n)}) for n in range(500)]
    await redis_client.xreadgroup("taskiq", "w", {"jobs": ">"}, count=500)
    await redis_client.xack("jobs", "taskiq", *ids)
    await redis_client.xdel("jobs", ids[100])
    queue = (await probe.read([_stream()])).queues[0]
    assert (queue.waiting, queue.in_flight) == (0, 0)


async def test_redis_6_2_reports_no_lag_yet_acknowledged_history_reads_as_zero(
    redis62_server: LocalRedisServer,
) -> None:
    client = redis.asyncio.Redis.from_url(redis62_server.url)
    probe = RedisProbe(redis62_server.url)
    try:
        await client.flushdb()
        await client.xgroup_create("jobs", "taskiq", id="$", mkstream=True)
        ids = [await client.xadd("jobs", {"data": str(n)}) for n in range(300)]
        await client.xreadgroup("taskiq", "w", {"jobs": ">"}, count=300)
        await client.xack("jobs", "taskiq", *ids)
        await client.xadd("jobs", {"data": "new"})
        [group] = await client.xinfo_groups("jobs")
        assert "lag" not in group
        queue = (await probe.read([_stream()])).queues[0]
        assert (queue.waiting, queue.in_flight) == (1, 0)
    finally:
        await probe.aclose()
        await client.aclose()


async def test_without_a_lag_the_undelivered_entries_are_counted(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    ids = [await redis_client.xadd("jobs", {"data": str(n)}) for n in range(40)]
    await redis_client.xgroup_create("jobs", "taskiq", id=ids[9])
    await redis_client.xdel("jobs", ids[30])
    [group] = await redis_client.xinfo_groups("jobs")
    assert group.get("lag") is None
    queue = (await probe.read([_stream()])).queues[0]
    assert queue.waiting == 29
    assert queue.warnings == ()


async def test_a_counted_lag_stops_at_the_cap_and_says_so(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    pipe = redis_client.pipeline(transaction=False)
    for n in range(LAG_COUNT_CAP + 5):
        pipe.xadd("jobs", {"d": n})
    ids = await pipe.execute()
    await redis_client.xgroup_create("jobs", "taskiq", id="0")
    await redis_client.xdel("jobs", ids[-1])
    queue = (await probe.read([_stream()])).queues[0]
    assert queue.waiting == LAG_COUNT_CAP
    assert f"at least {LAG_COUNT_CAP}" in queue.warnings[0]


async def test_the_oldest_age_is_the_oldest_pending_entry(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    now_ms = await server_ms(redis_client)
    await redis_client.xgroup_create("jobs", "taskiq", id="0", mkstream=True)
    await redis_client.xadd("jobs", {"d": 1}, id=f"{now_ms - 90_000}-0")
    await redis_client.xadd("jobs", {"d": 2}, id=f"{now_ms - 5_000}-0")
    await redis_client.xreadgroup("taskiq", "w", {"jobs": ">"}, count=1)
    age_s = (await probe.read([_stream()])).queues[0].oldest_age_s
    assert age_s is not None
    assert 90 <= age_s < 92


async def test_without_pending_entries_the_oldest_age_is_the_first_undelivered(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    now_ms = await server_ms(redis_client)
    await redis_client.xgroup_create("jobs", "taskiq", id="0", mkstream=True)
    first = await redis_client.xadd("jobs", {"d": 1}, id=f"{now_ms - 60_000}-0")
    await redis_client.xadd("jobs", {"d": 2}, id=f"{now_ms - 20_000}-0")
    await redis_client.xadd("jobs", {"d": 3}, id=f"{now_ms - 3_000}-0")
    await redis_client.xreadgroup("taskiq", "w", {"jobs": ">"}, count=1)
    await redis_client.xack("jobs", "taskiq", first)
    age_s = (await probe.read([_stream()])).queues[0].oldest_age_s
    assert age_s is not None
    assert 20 <= age_s < 22


async def test_a_stream_that_does_not_exist_reads_as_zero_with_a_warning(
    probe: RedisProbe,
) -> None:
    queue = (await probe.read([_stream("nothing-yet")])).queues[0]
    assert (queue.waiting, queue.in_flight) == (0, 0)
    assert queue.warnings == ("stream 'nothing-yet' does not exist yet; reading 0",)


async def test_a_group_that_does_not_exist_reads_as_zero_with_a_warning(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    await redis_client.xadd("jobs", {"d": 1})
    queue = (await probe.read([_stream(group="other")])).queues[0]
    assert (queue.waiting, queue.in_flight) == (0, 0)
    assert "consumer group 'other' of stream 'jobs' does not exist yet" in queue.warnings[0]
    assert "1 entries" in queue.warnings[0]


async def test_a_key_of_another_type_is_a_permanent_error_naming_the_key(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    await redis_client.rpush("jobs", "x")
    with pytest.raises(ProbeError, match="key 'jobs' holds a list, not a stream") as caught:
        await probe.read([_stream()])
    assert not caught.value.temporary


async def test_two_groups_on_one_stream_are_read_apart(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    await redis_client.xgroup_create("jobs", "fast", id="$", mkstream=True)
    await redis_client.xgroup_create("jobs", "slow", id="$")
    for n in range(6):
        await redis_client.xadd("jobs", {"d": n})
    await redis_client.xreadgroup("fast", "w", {"jobs": ">"}, count=4)
    fast, slow = (await probe.read([_stream(group="fast"), _stream(group="slow")])).queues
    assert (fast.waiting, fast.in_flight) == (2, 4)
    assert (slow.waiting, slow.in_flight) == (6, 0)


async def test_stream_workers_and_capacity_come_from_heartbeats(
    broker: RedisStreamBroker, probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    await put_heartbeat(redis_client, queue="jobs", worker="a", in_flight=7, capacity=10)
    await _send(broker, count=3)
    queue = (await probe.read([_stream()])).queues[0]
    assert (queue.waiting, queue.in_flight, queue.capacity, queue.workers) == (3, 0, 10, 1)
