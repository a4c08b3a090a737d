"""How the worker talks to Redis: connection options, backoff, retries, waiting for it.

A worker outlives Redis restarts, failovers and network blips. The policy, used by
the brokers, the result backend and the agent runtime alike:

- a connection or timeout error is temporary: retry with exponential backoff and
  jitter, logging one line per failure with the URL redacted;
- everything else (a wrong type, a script error, bad auth) is permanent: raise.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

logger = logging.getLogger("taskiq_fleet_worker.redis")

T = TypeVar("T")

#: Errors after which the same command may succeed on a new connection.
TEMPORARY_ERRORS: Final = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

#: How long connecting may take before it counts as a failure.
CONNECT_TIMEOUT_S: Final = 5.0
#: Socket timeout of connections that never block server-side (results, sessions).
COMMAND_TIMEOUT_S: Final = 10.0
#: How long a temporary failure is retried by the agent runtime and the result backend
#: before the run or the result gives up; covers a Redis restart or failover.
RETRY_WINDOW_S: Final = 60.0


def connection_options(*, blocking: bool) -> dict[str, Any]:
    """Options for a connection pool; ``blocking`` for pools that run BRPOP/XREADGROUP.

    redis-py defaults to a 5 s socket timeout: a worker blocked on an idle queue would
    time out and restart in a loop. Blocking pools get no socket timeout; their blocking
    calls carry a server-side timeout instead, and TCP keepalive finds dead peers.
    Pools reconnect a stale connection once by themselves (a Redis restart leaves every
    pooled connection dead); longer outages are retried by the callers.
    """
    return {
        "socket_timeout": None if blocking else COMMAND_TIMEOUT_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_keepalive": True,
        "health_check_interval": 15,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=2),
    }


class Backoff:
    """Exponential backoff with full jitter: 0.1 s doubling up to ``cap_s``."""

    def __init__(self, *, base_s: float = 0.1, cap_s: float = 5.0) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.failures = 0

    def next_delay_s(self) -> float:
        self.failures += 1
        ceiling = min(self.cap_s, self.base_s * 2 ** min(self.failures, 16))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security

    def reset(self) -> None:
        self.failures = 0


async def retrying(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    window_s: float = RETRY_WINDOW_S,
    backoff: Backoff | None = None,
) -> T:
    """Run ``operation``, retrying temporary Redis errors for up to ``window_s``.

    ``operation`` must be safe to repeat: it may have taken effect before the reply
    was lost. Raises the last error once the window is spent.
    """
    backoff = backoff or Backoff(cap_s=2.0)
    deadline = time.monotonic() + window_s
    while True:
        try:
            return await operation()
        except TEMPORARY_ERRORS as exc:
            delay_s = backoff.next_delay_s()
            if time.monotonic() + delay_s > deadline:
                # Gives up: the window is spent; the caller decides what failure means.
                raise
            # Retries after the delay: Redis may be restarting or failing over.
            logger.warning("%s failed (%s); retrying in %.1f s", what, describe(exc), delay_s)
            await asyncio.sleep(delay_s)


async def wait_until_reachable(client: redis.asyncio.Redis, *, shown_url: str) -> None:
    """Block until Redis answers PING, logging each failed attempt; never gives up.

    A worker whose Redis is not up yet waits for it instead of exiting: Taskiq would
    restart the process every second, and a pod would crash-loop.
    """
    backoff = Backoff()
    while True:
        try:
            await client.ping()
        except TEMPORARY_ERRORS as exc:
            # Retries forever: nothing can run without Redis, and it may come up.
            delay_s = backoff.next_delay_s()
            logger.warning(
                "Redis at %s is not reachable (%s); retrying in %.1f s",
                shown_url,
                describe(exc),
                delay_s,
            )
            await asyncio.sleep(delay_s)
        else:
            if backoff.failures:
                logger.info("Redis at %s is reachable again", shown_url)
            return


def describe(exc: BaseException) -> str:
    """One line for a log. Redis errors name host and port, never a password."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
