"""``taskiq-fleet local`` as a person runs it: a real CLI process, stopped with Ctrl-C."""

from __future__ import annotations

import asyncio
import re
import signal
import urllib.request

import pytest
import redis.asyncio

from taskiq_fleet.contract import heartbeat, keys
from tests.local.helpers import BIN, done_tokens, enqueue, eventually, worker_env

pytestmark = pytest.mark.integration


async def live_heartbeats(redis_url: str) -> list[heartbeat.Heartbeat]:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        beats, _ = heartbeat.parse_all(await client.hgetall(keys.heartbeat_key("default")))
    finally:
        await client.aclose()
    return beats


async def test_ctrl_c_drains_the_workers_and_exits_zero_with_nothing_lost(
    redis_url: str,
) -> None:
    process = await asyncio.create_subprocess_exec(
        str(BIN / "taskiq-fleet"),
        "local",
        "--redis-url", redis_url,
        "--min", "2", "--max", "2",
        "--concurrency", "2",
        "--drain-timeout", "20",
        "--poll-interval", "0.5",
        "--metrics-port", "0",
        "--",
        "taskiq", "worker", "tests.local.sleepy_app:broker", "--workers", "1",
        "--max-async-tasks", "2", "--wait-tasks-timeout", "15",
        env=worker_env(),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    first = (await asyncio.wait_for(process.stderr.readline(), timeout=20)).decode()
    metrics_url = re.search(r"metrics at (\S+)", first)
    assert metrics_url, first

    async def two_workers_up() -> bool:
        return len(await live_heartbeats(redis_url)) == 2

    await eventually(two_workers_up, timeout_s=30, what="two workers' heartbeats")
    tokens = [f"long-{i}" for i in range(8)]
    await enqueue(redis_url, tokens=tokens, work_ms=2000)

    async def busy() -> bool:
        return sum(b.in_flight for b in await live_heartbeats(redis_url)) >= 3

    await eventually(busy, timeout_s=15, what="the workers to hold tasks")
    body = await asyncio.to_thread(
        lambda: urllib.request.urlopen(metrics_url.group(1), timeout=5).read().decode()  # noqa: S310
    )
    assert 'taskiq_fleet_pool_replicas{kind="current",namespace="local",pool="local"} 2.0' in body

    process.send_signal(signal.SIGINT)
    rest = (await asyncio.wait_for(process.stderr.read(), timeout=40)).decode()
    code = await process.wait()

    assert code == 0, rest
    assert "draining 2 worker(s)" in rest
    assert "did not drain" not in rest
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        waiting = await client.llen("default")
    finally:
        await client.aclose()
    done = await done_tokens(redis_url)
    # Tasks held at Ctrl-C finished; the rest still wait in Redis for the next worker.
    assert len(done) >= 3
    assert len(done) == len(set(done))
    assert len(done) + waiting == len(tokens)
