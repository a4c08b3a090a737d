"""Shared pieces of the supervisor tests: pools, producers, deadlines."""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import redis.asyncio
from taskiq_redis import ListQueueBroker

from taskiq_fleet.local.config import load_pool
from taskiq_fleet.local.supervisor import LocalPool
from tests.local.sleepy_app import DONE_KEY, TASK_NAME

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

#: Scale in one second after the work is gone, so tests need not wait HPA's 5 minutes.
QUICK_SCALE_DOWN = {
    "scaleDown": {
        "stabilizationWindowSeconds": 1,
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
    }
}


def sleepy_worker_command(*, concurrency: int, drain_s: int) -> list[str]:
    """A real ``taskiq worker`` running the test app, one child process."""
    return [
        str(BIN / "taskiq"),
        "worker",
        "tests.local.sleepy_app:broker",
        "--workers", "1",
        "--max-async-tasks", str(concurrency),
        "--wait-tasks-timeout", str(drain_s),
        "--log-level", "WARNING",
    ]  # fmt: skip


def worker_env() -> dict[str, str]:
    """The test process's environment, with the repository importable by workers."""
    return {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def make_pool(
    redis_url: str,
    *,
    command: Sequence[str],
    min_replicas: int,
    max_replicas: int,
    concurrency: int = 2,
    drain_s: int = 15,
    poll_interval_s: float = 0.3,
) -> LocalPool:
    overrides: dict[str, Any] = {
        "scaling.minReplicas": min_replicas,
        "scaling.maxReplicas": max_replicas,
        "scaling.pollIntervalSeconds": poll_interval_s,
        "scaling.behavior": QUICK_SCALE_DOWN,
        "worker.concurrency": concurrency,
        "worker.drainTimeoutSeconds": drain_s,
    }
    return load_pool(
        file=None, name="tests", redis_url=redis_url, command=command, overrides=overrides
    )


async def enqueue(redis_url: str, *, tokens: Sequence[str], work_ms: int) -> None:
    """Send one sleepy task per token, as a producer would."""
    broker = ListQueueBroker(redis_url, queue_name="default")
    task = broker.register_task(_never_called, task_name=TASK_NAME)
    await broker.startup()
    try:
        for token in tokens:
            await task.kiq(token, work_ms)
    finally:
        await broker.shutdown()


async def _never_called(token: str, work_ms: int) -> None:
    """The producer's view of the task: only its name and signature matter."""


async def done_tokens(redis_url: str) -> list[str]:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        raw = await client.lrange(DONE_KEY, 0, -1)
    finally:
        await client.aclose()
    return [item.decode() for item in raw]


async def eventually(
    check: Callable[[], bool | Awaitable[bool]],
    *,
    timeout_s: float,
    what: str,
    every_s: float = 0.1,
) -> None:
    """Poll ``check`` until it holds; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        await asyncio.sleep(every_s)
