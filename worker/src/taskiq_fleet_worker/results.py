"""Task results in Redis: JSON, under a prefix, expiring, and stored through a restart.

Upstream's ``RedisAsyncResultBackend`` pickles results (unpickling what another
process wrote is code execution), keeps them forever unless told otherwise, stores
them under the bare task id, and builds a new client for every result it saves. Ours
is the same class, configured: JSON, ``result_ex_time``, a key prefix; saving goes
through one long-lived client and retries through a Redis restart (the receiver gives
up on the first error, and the caller would never see the outcome).

An agent run whose sessions live on the same Redis as the results stores its task's
result in the step that records its outcome, which saves a round trip per run. The
value is the one this backend would have written (:func:`encode_result`), except for
``execution_time``, which the run measures up to that step rather than the receiver
up to the task's return. The run then marks the task (:func:`mark_stored`) and the
backend skips the write, as long as the receiver hands it that very return value:
anything else (an error, a value a middleware replaced) is written as usual.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from redis.asyncio import Redis
from taskiq import TaskiqResult
from taskiq.serializers import JSONSerializer
from taskiq_redis import RedisAsyncResultBackend

from taskiq_fleet.contract import keys
from taskiq_fleet_worker.connection import connection_options, retrying

_T = TypeVar("_T")

#: Results live under ``<prefix>:<task id>``, apart from every other key.
RESULT_PREFIX: Final = f"{keys.KEY_PREFIX}:results"
_SERIALIZER: Final = JSONSerializer()

#: The task id and return value whose result the running task has stored already.
#: A context variable: the receiver saves the result in the task's own context.
_stored: ContextVar[tuple[str, object] | None] = ContextVar(
    "taskiq_fleet_stored_result", default=None
)


@dataclass(frozen=True, slots=True)
class ResultTarget:
    """Results share the sessions' Redis: a run may store its task's result itself."""

    ttl_s: int


def result_key(task_id: str) -> str:
    """The key a task's result is stored under."""
    return f"{RESULT_PREFIX}:{task_id}"


def encode_result(
    return_value: Any, *, labels: Mapping[str, Any], execution_time_s: float
) -> bytes:
    """A task's successful result, encoded as the backend encodes it.

    The fields, in the order ``TaskiqResult.model_dump(mode="json")`` gives them, of a
    return value that is JSON already: building the model costs a run more than its
    own session writes do. A test holds the two encodings equal.
    """
    return _SERIALIZER.dumpb(
        {
            "is_err": False,
            "log": None,
            "return_value": return_value,
            "execution_time": round(execution_time_s, 2),
            "labels": dict(labels),
            "error": None,
        }
    )


def mark_stored(task_id: str, return_value: object) -> None:
    """Tell the backend that ``task_id``'s result, ``return_value``, is stored."""
    _stored.set((task_id, return_value))


def _take_stored(task_id: str, result: TaskiqResult[Any]) -> bool:
    stored = _stored.get()
    if stored is None:
        return False
    _stored.set(None)
    return not result.is_err and stored[0] == task_id and stored[1] is result.return_value


class FleetResultBackend(RedisAsyncResultBackend[_T]):
    """``RedisAsyncResultBackend`` with JSON, expiry, a prefix and retried writes."""

    def __init__(self, redis_url: str, *, result_ttl_s: int, **kwargs: Any) -> None:
        super().__init__(
            redis_url,
            result_ex_time=result_ttl_s,
            serializer=_SERIALIZER,
            prefix_str=RESULT_PREFIX,
            **(connection_options(blocking=False) | kwargs),
        )
        self.result_ttl_s = result_ttl_s
        self._client: Redis | None = None

    async def set_result(self, task_id: str, result: TaskiqResult[_T]) -> None:
        if _take_stored(task_id, result):
            # Stored already, together with the run's outcome.
            return
        if self._client is None:
            self._client = Redis(connection_pool=self.redis_pool)
        client = self._client
        value = self.serializer.dumpb(result.model_dump(mode="json"))
        # Retries: SET of the same value is safe to repeat.
        await retrying(
            lambda: client.set(result_key(task_id), value, ex=self.result_ttl_s),
            what="saving a task result",
        )
