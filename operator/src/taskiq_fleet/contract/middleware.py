"""The fleet middleware: what makes any Taskiq app's workers scalable by taskiq-fleet.

Add it to a broker (``broker.add_middlewares(FleetMiddleware())``) and

- every message a producer sends carries an enqueue stamp (label
  ``keys.LABEL_ENQUEUED_MS``), from which the probe reads the oldest task's age;
- every worker process publishes a heartbeat (``contract.heartbeat``) every
  ``interval_s`` with its pod name, pid, tasks in flight and capacity, so the
  operator counts work a list worker has already popped, and knows who is idle;
- a worker that stops cleanly withdraws its heartbeat at once; one that dies is
  forgotten when its heartbeat expires.

The Redis connection is the broker's own when the broker is a taskiq-redis broker;
otherwise pass ``redis_url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any, Final

import redis.asyncio
import redis.exceptions
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.labels import LabelType

from taskiq_fleet.contract import heartbeat, keys

logger = logging.getLogger("taskiq_fleet.middleware")

#: Taskiq's own default for ``--max-async-tasks``: the capacity of a worker process
#: whose command line does not say otherwise.
TASKIQ_DEFAULT_MAX_ASYNC_TASKS: Final = 100
#: The longest a heartbeat write may take before this beat is given up.
PUBLISH_TIMEOUT_S: Final = 2.0


class FleetMiddleware(TaskiqMiddleware):
    """Heartbeats with in-flight and capacity per worker process; enqueue stamps on send.

    Every argument is optional. ``queue`` defaults to ``$TASKIQ_FLEET_QUEUE``, then the
    broker's ``queue_name``; ``pod_name`` to ``$TASKIQ_FLEET_POD_NAME``, then the host
    name; ``capacity`` to ``$TASKIQ_FLEET_CAPACITY``, then the worker's
    ``--max-async-tasks``.
    """

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        queue: str | None = None,
        pod_name: str | None = None,
        capacity: int | None = None,
        interval_s: float = heartbeat.DEFAULT_INTERVAL_S,
        ttl_s: float = heartbeat.DEFAULT_TTL_S,
    ) -> None:
        super().__init__()
        if interval_s <= 0 or ttl_s <= interval_s:
            raise ValueError(
                f"FleetMiddleware: ttl_s ({ttl_s}) must exceed interval_s ({interval_s}) > 0"
            )
        self._redis_url = redis_url
        self._queue = queue
        self._pod_name = pod_name
        self._capacity = capacity
        self.interval_s = interval_s
        self.ttl_s = ttl_s
        self.in_flight = 0
        self.worker_id = ""
        self._client: redis.asyncio.Redis | None = None
        self._owns_client = False
        self._loop_task: asyncio.Task[None] | None = None

    # --- producer side ---------------------------------------------------------------

    def pre_send(self, message: TaskiqMessage) -> TaskiqMessage:
        """Stamp the message with the time it was sent (milliseconds, producer clock)."""
        message.labels[keys.LABEL_ENQUEUED_MS] = str(time.time_ns() // 1_000_000)
        if message.labels_types is None:
            message.labels_types = {}
        message.labels_types[keys.LABEL_ENQUEUED_MS] = LabelType.INT.value
        return message

    # --- worker side -----------------------------------------------------------------

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        self.in_flight += 1
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        self.in_flight = max(0, self.in_flight - 1)

    @property
    def queue(self) -> str:
        return (
            self._queue
            or os.environ.get(keys.ENV_QUEUE)
            or str(getattr(self.broker, "queue_name", None) or "taskiq")
        )

    @property
    def pod_name(self) -> str:
        return self._pod_name or os.environ.get(keys.ENV_POD_NAME) or socket.gethostname()

    @property
    def capacity(self) -> int:
        if self._capacity is not None:
            return self._capacity
        from_env = os.environ.get(keys.ENV_CAPACITY, "").strip()
        if from_env:
            try:
                return max(0, int(from_env))
            except ValueError:
                # Holds: a bad value must not stop the worker; the flag still tells.
                logger.warning(
                    "%s=%r is not a number; using --max-async-tasks", keys.ENV_CAPACITY, from_env
                )
        return max_async_tasks_from_argv(sys.argv)

    async def startup(self) -> None:
        """In a worker process: publish the first heartbeat and keep publishing."""
        if not self.broker.is_worker_process:
            return
        self.worker_id = f"{self.pod_name}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._client = self._make_client()
        await self.beat()
        self._loop_task = asyncio.create_task(self._beat_forever(), name="fleet-heartbeat")

    async def shutdown(self) -> None:
        """On a clean stop: stop beating and withdraw, so capacity stops counting now."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                # The cancel we just asked for; nothing else can end this task.
                await self._loop_task
            self._loop_task = None
        if self._client is None:
            return
        try:
            await asyncio.wait_for(
                heartbeat.withdraw(
                    _typed(self._client), queue=self.queue, worker_id=self.worker_id
                ),
                PUBLISH_TIMEOUT_S,
            )
        except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
            # Gives up: the heartbeat expires on its own within its ttl.
            logger.warning("could not withdraw heartbeat %s: %s", self.worker_id, _brief(exc))
        if self._owns_client:
            await self._client.aclose()
        self._client = None

    def heartbeat(self) -> heartbeat.Heartbeat:
        """This process's heartbeat as of now."""
        return heartbeat.Heartbeat(
            worker_id=self.worker_id,
            pod=self.pod_name,
            pid=os.getpid(),
            in_flight=self.in_flight,
            capacity=self.capacity,
            ttl_ms=int(self.ttl_s * 1000),
        )

    async def beat(self) -> bool:
        """Publish one heartbeat; ``False`` (and a warning) when Redis could not take it."""
        if self._client is None:
            return False
        try:
            await asyncio.wait_for(
                heartbeat.publish(
                    _typed(self._client), queue=self.queue, heartbeat=self.heartbeat()
                ),
                PUBLISH_TIMEOUT_S,
            )
        except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
            # Retries at the next beat; meanwhile the operator holds its replica count.
            logger.warning("heartbeat for queue %r not published: %s", self.queue, _brief(exc))
            return False
        return True

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.beat()

    def _make_client(self) -> redis.asyncio.Redis:
        if self._redis_url is not None:
            self._owns_client = True
            return redis.asyncio.Redis.from_url(
                self._redis_url,
                socket_timeout=PUBLISH_TIMEOUT_S,
                socket_connect_timeout=PUBLISH_TIMEOUT_S,
            )
        pool = getattr(self.broker, "connection_pool", None)
        if not isinstance(pool, redis.asyncio.ConnectionPool):
            raise TypeError(
                f"FleetMiddleware: broker {type(self.broker).__name__} has no Redis connection "
                "pool; pass FleetMiddleware(redis_url=...)"
            )
        self._owns_client = False
        return redis.asyncio.Redis(connection_pool=pool)


def max_async_tasks_from_argv(argv: Sequence[str]) -> int:
    """The ``--max-async-tasks`` of a ``taskiq worker`` command line, else taskiq's default."""
    for index, arg in enumerate(argv):
        value: str | None = None
        if arg == "--max-async-tasks" and index + 1 < len(argv):
            value = argv[index + 1]
        elif arg.startswith("--max-async-tasks="):
            value = arg.partition("=")[2]
        if value is not None and value.isdigit():
            return int(value)
    return TASKIQ_DEFAULT_MAX_ASYNC_TASKS


def _brief(exc: BaseException) -> str:
    """An error as one line. Redis errors name host and port, never the password."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _typed(client: redis.asyncio.Redis) -> Any:
    """redis-py's stubs return ``Awaitable`` where ``heartbeat``'s protocol says coroutine;
    the calls are the same."""
    return client
