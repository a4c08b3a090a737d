"""What a probe is asked to read and what it returns."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class BrokerKind(StrEnum):
    LIST = "list"  # taskiq-redis ListQueueBroker: LPUSH / BRPOP on a list
    STREAM = "stream"  # taskiq-redis RedisStreamBroker: XADD / XREADGROUP in a group


@dataclass(frozen=True, slots=True)
class QueueRef:
    """One queue of a pool: the broker kind, the list or stream key, the weight in the sum."""

    kind: BrokerKind
    name: str
    weight: float = 1.0
    consumer_group: str = "taskiq"


@dataclass(frozen=True, slots=True)
class QueueReading:
    """One queue's signals at one moment.

    ``waiting``: tasks not yet handed to any worker. ``in_flight``: tasks handed out and
    not finished (stream: the group's pending entries; list: the sum over live worker
    heartbeats). ``capacity`` and ``workers`` come from live heartbeats.
    """

    queue: QueueRef
    waiting: int
    in_flight: int
    oldest_age_s: float | None
    workers: int
    capacity: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PoolReading:
    """All queues of one pool, read in the same round trip."""

    queues: tuple[QueueReading, ...]

    @property
    def waiting(self) -> float:
        return sum(q.waiting * q.queue.weight for q in self.queues)

    @property
    def in_flight(self) -> float:
        return sum(q.in_flight * q.queue.weight for q in self.queues)

    @property
    def oldest_age_s(self) -> float | None:
        ages = [q.oldest_age_s for q in self.queues if q.oldest_age_s is not None]
        return max(ages) if ages else None


class ProbeError(Exception):
    """A read that failed. ``temporary`` errors (connection, timeout) are retried on the
    next poll; permanent ones (a key of the wrong type, bad credentials) need a person.
    The message never contains a password."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary
