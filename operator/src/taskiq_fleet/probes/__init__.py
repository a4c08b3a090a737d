"""Queue probes: read waiting work, in-flight work and task age from Redis. No Kubernetes.

>>> from taskiq_fleet.probes import RedisProbe
"""

from taskiq_fleet.probes.redis_probe import RedisProbe
from taskiq_fleet.probes.types import (
    BrokerKind,
    PoolReading,
    ProbeError,
    QueueReading,
    QueueRef,
)

__all__ = ["BrokerKind", "PoolReading", "ProbeError", "QueueReading", "QueueRef", "RedisProbe"]
