"""Real workers through their life: drain on SIGTERM, crash, idle, late start, Redis restart."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from taskiq_fleet.contract import keys
from tests.fixtures.redis import RedisHandle
from tests.worker.harness import (
    QUEUE,
    eventually,
    producer,
    run_command,
    session_events,
    start_worker,
    terminal_events,
    wait_exit,
    wait_ready,
)

pytestmark = pytest.mark.integration


async def _all_completed(client: redis.asyncio.Redis, sessions: list[str]) -> bool:
    for session_id in sessions:
        if "run.completed" not in await terminal_events(client, session_id):
            return False
    return True


async def _started(client: redis.asyncio.Redis, sessions: list[str], *, at_least: int = 1) -> bool:
    started = sum(["run.started" in await session_events(client, s) for s in sessions])
    return started >= at_least


async def test_sigterm_lets_running_tasks_finish_and_leaves_the_rest_queued(
    redis_url: str, redis_client: redis.asyncio.Redis, tmp_path: Path
) -> None:
    broker, send = producer(redis_url)
    await broker.startup()
    worker = start_worker(redis_url, tmp_path=tmp_path, concurrency=2, drain_s=10)
    await wait_ready(redis_client, worker)
    commands = [run_command(steps=3, work_ms=1500) for _ in range(5)]
    for command in commands:
        await send.kiq(command)
    sessions = [c["session_id"] for c in commands]
    await eventually(
        lambda: _started(redis_client, sessions, at_least=2), timeout_s=10, what="two runs"
    )

    worker.signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    assert wait_exit(worker, timeout_s=12) == 0, worker.log()[-3000:]

    assert time.monotonic() - stopped_at < 10
    finished = [s for s in sessions if await terminal_events(redis_client, s)]
    assert len(finished) == 2, "both runs in flight finish during the drain"
    assert await redis_client.llen(QUEUE) == 3, "the three waiting commands stay queued"
    assert not await redis_client.hgetall(keys.heartbeat_key(QUEUE)), "heartbeat withdrawn"

    # A new worker takes the rest: every command ran exactly once.
    successor = start_worker(redis_url, tmp_path=tmp_path, concurrency=3)
    try:
        await eventually(
            lambda: _all_completed(redis_client, sessions), timeout_s=30, what="all five runs"
        )
        for session_id in sessions:
            assert (await session_events(redis_client, session_id)).count("run.started") == 1
    finally:
        successor.stop()
        await broker.shutdown()


async def test_tasks_of_a_killed_stream_worker_complete_once_without_new_traffic(
    redis_url: str, redis_client: redis.asyncio.Redis, tmp_path: Path
) -> None:
    quick = {"TASKIQ_RECLAIM_IDLE_S": "3", "TASKIQ_TASK_TIMEOUT_S": "2.5"}
    broker, send = producer(redis_url, kind="stream", reclaim_idle_s=3, task_timeout_s=2.5)
    await broker.startup()
    doomed = start_worker(redis_url, tmp_path=tmp_path, kind="stream", concurrency=3, **quick)
    await wait_ready(redis_client, doomed)
    commands = [run_command(steps=4, work_ms=1600) for _ in range(5)]
    for command in commands:
        await send.kiq(command)
    sessions = [c["session_id"] for c in commands]
    await eventually(
        lambda: _started(redis_client, sessions, at_least=3), timeout_s=10, what="three runs"
    )

    doomed.kill_group()
    successor = start_worker(redis_url, tmp_path=tmp_path, kind="stream", concurrency=3, **quick)
    try:
        await eventually(
            lambda: _all_completed(redis_client, sessions),
            timeout_s=40,
            what="every run, reclaimed from the killed worker",
        )
        for session_id in sessions:
            ends = Counter(await terminal_events(redis_client, session_id))
            assert ends == {"run.completed": 1}, (session_id, ends)
        pending = await redis_client.xpending(QUEUE, "taskiq")
        assert pending["pending"] == 0
        assert "reclaimed delivery" in successor.log()
    finally:
        successor.stop()
        await broker.shutdown()


@pytest.mark.parametrize("kind", ["list", "stream"])
async def test_an_idle_worker_stays_up_and_exits_promptly_on_sigterm(
    redis_url: str, redis_client: redis.asyncio.Redis, tmp_path: Path, kind: str
) -> None:
    worker = start_worker(redis_url, tmp_path=tmp_path, kind=kind)
    first = await wait_ready(redis_client, worker)

    # Longer than redis-py's default socket timeout and Taskiq's restart period together.
    await asyncio.sleep(11)
    latest = await wait_ready(redis_client, worker)

    assert worker.process.poll() is None
    assert latest.pid == first.pid, "the worker child was restarted"
    assert "is dead" not in worker.log()
    worker.signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    assert wait_exit(worker, timeout_s=10) == 0
    assert time.monotonic() - stopped_at < 5


async def test_stream_entries_sent_before_any_worker_started_are_run(
    redis_url: str, redis_client: redis.asyncio.Redis, tmp_path: Path
) -> None:
    broker, send = producer(redis_url, kind="stream")
    commands = [run_command() for _ in range(3)]
    # No broker.startup(): not even the producer declared the consumer group.
    for command in commands:
        await send.kiq(command)
    assert await redis_client.xlen(QUEUE) == 3

    worker = start_worker(redis_url, tmp_path=tmp_path, kind="stream")
    try:
        await eventually(
            lambda: _all_completed(redis_client, [c["session_id"] for c in commands]),
            timeout_s=30,
            what="the runs sent before the worker",
        )
    finally:
        worker.stop()
        await broker.shutdown()


async def test_a_redis_restart_during_a_run_neither_kills_the_worker_nor_the_run(
    own_redis_server: RedisHandle, tmp_path: Path
) -> None:
    client = redis.asyncio.Redis.from_url(own_redis_server.url)
    broker, send = producer(own_redis_server.url)
    await broker.startup()
    worker = start_worker(own_redis_server.url, tmp_path=tmp_path)
    try:
        first = await wait_ready(client, worker)
        command = run_command(steps=6, work_ms=3000)
        running = await send.kiq(command)
        await eventually(
            lambda: _started(client, [command["session_id"]]), timeout_s=10, what="the run"
        )

        own_redis_server.stop()
        await asyncio.sleep(1.0)  # the outage
        own_redis_server.start()
        await client.connection_pool.disconnect()  # the test's own connections died too

        result: Any = await running.wait_result(timeout=30)
        assert result.return_value["status"] == "completed"
        assert await terminal_events(client, command["session_id"]) == ["run.completed"]
        after = await wait_ready(client, worker)
        assert after.pid == first.pid, "the worker child survived the restart"
        again = await send.kiq(run_command())
        assert (await again.wait_result(timeout=20)).return_value["status"] == "completed"
    finally:
        worker.stop()
        await broker.shutdown()
        await client.aclose()


async def test_a_worker_with_a_bad_setting_stops_instead_of_restarting_forever(
    tmp_path: Path,
) -> None:
    worker = start_worker(
        "http://agent:hunter2@redis:6379/0", tmp_path=tmp_path, extra_args=("--max-fails", "2")
    )

    code = wait_exit(worker, timeout_s=30)

    assert code != 0
    output = worker.log()
    assert "REDIS_URL 'http://agent:***@redis:6379/0' must start with redis://" in output
    assert "hunter2" not in output
