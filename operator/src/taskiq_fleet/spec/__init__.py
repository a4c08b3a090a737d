"""The pool specification shared by the operator and the local supervisor (pydantic).

>>> from taskiq_fleet.spec import PoolSpec
"""

from taskiq_fleet.spec.base import InvalidPoolSpecError
from taskiq_fleet.spec.behavior import BehaviorSpec, ScalingPolicySpec, ScalingRulesSpec
from taskiq_fleet.spec.pool import (
    BrokerSpec,
    PoolSpec,
    QueueSpec,
    RedisSpec,
    ScaleTargetRef,
    ScalingSpec,
    SecretKeyRef,
    WorkerSpec,
)

__all__ = [
    "BehaviorSpec",
    "BrokerSpec",
    "InvalidPoolSpecError",
    "PoolSpec",
    "QueueSpec",
    "RedisSpec",
    "ScaleTargetRef",
    "ScalingPolicySpec",
    "ScalingRulesSpec",
    "ScalingSpec",
    "SecretKeyRef",
    "WorkerSpec",
]
