"""A small Taskiq app for the supervisor's tests: tasks sleep, then record that they ran.

Run by real ``taskiq worker`` processes (``tests.local.sleepy_app:broker``). Each task
appends its token to ``DONE_KEY``, so a test can tell a lost task (missing) from a
duplicated one (twice). The fleet middleware publishes heartbeats, as in production.
"""

from __future__ import annotations

import asyncio
import os

import redis.asyncio
from taskiq_redis import ListQueueBroker

from taskiq_fleet.contract.middleware import FleetMiddleware

DONE_KEY = "tests:local:done"
TASK_NAME = "tests.local.sleepy"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("TASKIQ_DEFAULT_QUEUE", "default")

# No socket timeout: a worker blocks on an idle list longer than any sensible timeout.
broker = ListQueueBroker(
    REDIS_URL, queue_name=QUEUE, socket_timeout=None, socket_keepalive=True
).with_middlewares(FleetMiddleware(redis_url=REDIS_URL))

_client: redis.asyncio.Redis | None = None


@broker.task(task_name=TASK_NAME)
async def sleepy(token: str, work_ms: int) -> None:
    global _client  # noqa: PLW0603 - one connection per worker process, made on first use
    await asyncio.sleep(work_ms / 1000)
    if _client is None:
        _client = redis.asyncio.Redis.from_url(REDIS_URL)
    await _client.rpush(DONE_KEY, token)
