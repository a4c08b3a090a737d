"""The hardened brokers on a real Redis: nothing lost on stop, restart, crash or late start."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio
from taskiq import AckableMessage

from taskiq_fleet.redis_server import free_port
from taskiq_fleet_worker.brokers import FleetListBroker, FleetStreamBroker, trim_acknowledged
from tests.fixtures.redis import RedisHandle

pytestmark = pytest.mark.integration


@pytest.fixture
async def list_broker(redis_url: str) -> AsyncIterator[FleetListBroker]:
    broker = FleetListBroker(redis_url, queue_name="q")
    broker.is_worker_process = True
    yield broker
    await broker.shutdown()


def _stream_broker(url: str, **options: Any) -> FleetStreamBroker:
    broker = FleetStreamBroker(
        url, queue_name="s", consumer_group_name="g", idle_timeout_s=0.5, **options
    )
    broker.is_worker_process = True
    return broker


async def test_a_list_message_popped_as_the_worker_stops_goes_back_to_the_head(
    list_broker: FleetListBroker, redis_client: redis.asyncio.Redis, redis_url: str
) -> None:
    await redis_client.lpush("q", b"older")
    listener = list_broker.listen()
    assert await anext(listener) == b"older"
    waiting = asyncio.create_task(anext(listener))
    await asyncio.sleep(0.1)  # let BRPOP reach the server

    # A blocking push: the server hands the message to the waiting BRPOP while this
    # loop is stopped, so the stop below lands after the pop, before its reply is read.
    with redis.Redis.from_url(redis_url) as blocking:
        blocking.lpush("q", b"in-flight")
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting

    assert await redis_client.lrange("q", 0, -1) == [b"in-flight"]


async def test_the_list_listener_rides_out_a_redis_restart(own_redis_server: RedisHandle) -> None:
    broker = FleetListBroker(own_redis_server.url, queue_name="q")
    client = redis.asyncio.Redis.from_url(own_redis_server.url)
    listener = broker.listen()
    try:
        await client.lpush("q", b"before")
        assert await anext(listener) == b"before"

        own_redis_server.stop()
        waiting = asyncio.create_task(anext(listener))
        await asyncio.sleep(0.5)
        own_redis_server.start()
        await client.connection_pool.disconnect()
        await client.lpush("q", b"after")

        assert await asyncio.wait_for(waiting, timeout=15) == b"after"
    finally:
        await listener.aclose()
        await client.aclose()
        await broker.shutdown()


async def test_a_worker_waits_for_an_unreachable_redis_and_logs_it_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = FleetListBroker(f"redis://agent:hunter2@127.0.0.1:{free_port()}/0", queue_name="q")
    broker.is_worker_process = True

    with caplog.at_level(logging.WARNING), pytest.raises(TimeoutError):
        await asyncio.wait_for(broker.startup(), timeout=1.5)

    assert "is not reachable" in caplog.text
    assert "redis://agent:***@127.0.0.1" in caplog.text
    assert "hunter2" not in caplog.text
    await broker.shutdown()


async def test_a_producer_startup_creates_the_group_at_the_start_of_the_stream(
    redis_url: str, redis_client: redis.asyncio.Redis
) -> None:
    producer = _stream_broker(redis_url)
    producer.is_worker_process = False

    await producer.startup()

    [group] = await redis_client.xinfo_groups("s")
    assert group["name"] == b"g"
    assert group["last-delivered-id"] == b"0-0"
    await producer.shutdown()


async def test_a_queue_of_the_wrong_kind_is_refused_with_advice(
    redis_url: str, redis_client: redis.asyncio.Redis
) -> None:
    await redis_client.lpush("s", b"a list task")
    broker = _stream_broker(redis_url)

    with pytest.raises(RuntimeError, match="exists and is not a stream"):
        await broker.startup()
    await broker.shutdown()


async def test_an_orphaned_stream_delivery_is_reclaimed_with_no_new_traffic(
    redis_url: str, redis_client: redis.asyncio.Redis
) -> None:
    await redis_client.xgroup_create("s", "g", id="0", mkstream=True)
    await redis_client.xadd("s", {b"data": b"orphan"})
    # A consumer that read the entry and died without acknowledging it.
    await redis_client.xreadgroup("g", "dead-consumer", {"s": ">"}, count=1)
    survivor = _stream_broker(redis_url, reclaim_interval_s=0.2)
    listener = survivor.listen()
    try:
        message = await asyncio.wait_for(anext(listener), timeout=10)

        assert isinstance(message, AckableMessage)
        assert message.data == b"orphan"
        await message.ack()  # type: ignore[misc]
        assert (await redis_client.xpending("s", "g"))["pending"] == 0
    finally:
        await listener.aclose()
        await survivor.shutdown()


async def test_a_stream_entry_that_is_no_taskiq_message_is_skipped_not_a_crash(
    redis_url: str, redis_client: redis.asyncio.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    await redis_client.xgroup_create("s", "g", id="0", mkstream=True)
    junk = await redis_client.xadd("s", {b"junk": b"x"})
    await redis_client.xadd("s", {b"data": b"task"})
    broker = _stream_broker(redis_url)
    listener = broker.listen()
    try:
        with caplog.at_level(logging.WARNING, logger="taskiq_fleet_worker"):
            message = await asyncio.wait_for(anext(listener), timeout=10)

        assert isinstance(message, AckableMessage)
        assert message.data == b"task"
        await message.ack()  # type: ignore[misc]
        assert (await redis_client.xpending("s", "g"))["pending"] == 0
        assert f"skipped entry {junk.decode()} of 's'" in caplog.text
    finally:
        await listener.aclose()
        await broker.shutdown()


async def test_a_stream_delivery_read_as_the_worker_stops_is_given_back(
    redis_url: str, redis_client: redis.asyncio.Redis
) -> None:
    broker = _stream_broker(redis_url, reclaim_interval_s=60)
    await broker.startup()
    listener = broker.listen()
    waiting = asyncio.create_task(anext(listener))
    await asyncio.sleep(0.2)  # let XREADGROUP reach the server

    # As above: the entry is delivered to the waiting read before the stop lands.
    with redis.Redis.from_url(redis_url) as blocking:
        blocking.xadd("s", {b"data": b"late"})
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting

    assert (await redis_client.xpending("s", "g"))["pending"] == 0
    entries = await redis_client.xreadgroup("g", "next-worker", {"s": ">"})
    assert [fields[b"data"] for _id, fields in entries[0][1]] == [b"late"]
    await broker.shutdown()


async def test_trimming_drops_acknowledged_history_only(
    redis_client: redis.asyncio.Redis,
) -> None:
    await redis_client.xgroup_create("s", "g", id="0", mkstream=True)
    ids = [await redis_client.xadd("s", {b"data": str(i).encode()}) for i in range(300)]
    read = await redis_client.xreadgroup("g", "c", {"s": ">"}, count=250)
    delivered = [entry_id for entry_id, _ in read[0][1]]
    await redis_client.xack("s", "g", *delivered[:200])

    await trim_acknowledged(redis_client, stream="s")

    remaining = {entry_id for entry_id, _ in await redis_client.xrange("s")}
    assert set(delivered[200:]) <= remaining, "pending entries are kept"
    assert set(ids[250:]) <= remaining, "undelivered entries are kept"
    assert len(remaining) < 300, "acknowledged history is trimmed"


async def test_a_lost_consumer_group_is_created_again(
    redis_url: str, redis_client: redis.asyncio.Redis
) -> None:
    broker = _stream_broker(redis_url, reclaim_interval_s=60)
    await broker.startup()
    listener = broker.listen()
    try:
        await redis_client.flushdb()  # Redis restarted without persistence
        await redis_client.xadd("s", {b"data": b"fresh"})
        reading = asyncio.create_task(anext(listener))
        await asyncio.sleep(0.2)
        await redis_client.xadd("s", {b"data": b"fresher"})

        message = await asyncio.wait_for(reading, timeout=10)

        assert message.data in {b"fresh", b"fresher"}
    finally:
        await listener.aclose()
        await broker.shutdown()
