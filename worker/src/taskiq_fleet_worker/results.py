"""Task results in Redis: JSON, under a prefix, expiring, and stored through a restart.

Upstream's ``RedisAsyncResultBackend`` pickles results (unpickling what another
process wrote is code execution), keeps them forever unless told otherwise, and
stores them under the bare task id. Ours is the same class, configured: JSON,
``result_ex_time``, a key prefix. Saving a result retries through a Redis restart, since
the receiver gives up on the first error and the caller would never see the outcome.
"""

from __future__ import annotations

from typing import Any, Final, TypeVar

from taskiq import TaskiqResult
from taskiq.serializers import JSONSerializer
from taskiq_redis import RedisAsyncResultBackend

from taskiq_fleet.contract import keys
from taskiq_fleet_worker.connection import connection_options, retrying

_T = TypeVar("_T")

#: Results live under ``<prefix>:<task id>``, apart from every other key.
RESULT_PREFIX: Final = f"{keys.KEY_PREFIX}:results"


class FleetResultBackend(RedisAsyncResultBackend[_T]):
    """``RedisAsyncResultBackend`` with JSON, expiry, a prefix and retried writes."""

    def __init__(self, redis_url: str, *, result_ttl_s: int, **kwargs: Any) -> None:
        super().__init__(
            redis_url,
            result_ex_time=result_ttl_s,
            serializer=JSONSerializer(),
            prefix_str=RESULT_PREFIX,
            **(connection_options(blocking=False) | kwargs),
        )

    async def set_result(self, task_id: str, result: TaskiqResult[_T]) -> None:
        # Retries: SET of the same value is safe to repeat.
        async def save() -> None:
            await RedisAsyncResultBackend.set_result(self, task_id, result)

        await retrying(save, what="saving a task result")
