"""The TaskiqWorkerPool spec: defaults, names, and what the engine and probes get from it."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from taskiq_fleet.engine import default_behavior
from taskiq_fleet.engine.types import PolicyKind, RatePolicy, SelectPolicy
from taskiq_fleet.probes import BrokerKind, QueueRef
from taskiq_fleet.spec import PoolSpec

REDIS = {"urlSecretRef": {"name": "redis", "key": "url"}}


def minimal(**sections: Any) -> dict[str, Any]:
    return {"broker": {"redis": REDIS}, **sections}


def test_a_minimal_spec_takes_the_documented_defaults() -> None:
    spec = PoolSpec.parse(minimal())
    assert spec.broker.kind is BrokerKind.LIST
    assert [q.name for q in spec.broker.queues] == ["default"]
    assert spec.broker.consumer_group == "taskiq"
    assert spec.worker.concurrency == 10
    assert spec.worker.drain_timeout_seconds == 30
    scaling = spec.scaling
    assert (scaling.min_replicas, scaling.max_replicas) == (0, 20)
    assert scaling.poll_interval_seconds == 2
    assert scaling.scale_to_zero_after_seconds == 300
    assert scaling.activation_threshold == 0
    assert scaling.fallback_replicas is None
    assert spec.scale_target_ref is None


def test_fields_are_read_by_their_camel_case_names_and_written_back_the_same() -> None:
    data = minimal(
        worker={"concurrency": 4, "drainTimeoutSeconds": 90},
        scaling={"minReplicas": 1, "maxReplicas": 7, "scaleToZeroAfterSeconds": 60},
    )
    spec = PoolSpec.parse(data)
    assert spec.worker.drain_timeout_seconds == 90
    dumped = spec.model_dump(exclude_none=True)
    assert dumped["scaling"]["maxReplicas"] == 7
    assert dumped["broker"]["redis"]["urlSecretRef"] == {"name": "redis", "key": "url"}
    assert PoolSpec.parse(dumped) == spec


def test_the_target_per_replica_defaults_to_the_workers_concurrency() -> None:
    spec = PoolSpec.parse(minimal(worker={"concurrency": 25}))
    assert spec.to_policy().target_per_replica == 25
    explicit = PoolSpec.parse(minimal(worker={"concurrency": 25}, scaling={"targetPerReplica": 8}))
    assert explicit.to_policy().target_per_replica == 8


def test_to_policy_carries_every_scaling_setting_to_the_engine() -> None:
    spec = PoolSpec.parse(
        minimal(
            scaling={
                "minReplicas": 1,
                "maxReplicas": 9,
                "targetPerReplica": 2.5,
                "activationThreshold": 3,
                "scaleToZeroAfterSeconds": 45,
                "fallbackReplicas": 4,
            }
        )
    )
    policy = spec.to_policy()
    assert (policy.min_replicas, policy.max_replicas) == (1, 9)
    assert policy.target_per_replica == 2.5
    assert policy.activation_threshold == 3
    assert policy.scale_to_zero_after_s == 45
    assert policy.fallback_replicas == 4
    assert policy.behavior == default_behavior()


def test_a_partial_behavior_fills_the_rest_from_hpas_defaults() -> None:
    spec = PoolSpec.parse(
        minimal(
            scaling={
                "behavior": {
                    "scaleDown": {"stabilizationWindowSeconds": 60},
                    "scaleUp": {
                        "selectPolicy": "Min",
                        "policies": [{"type": "Pods", "value": 2, "periodSeconds": 30}],
                    },
                }
            }
        )
    )
    behavior = spec.to_policy().behavior
    hpa = default_behavior()
    assert behavior.scale_down.stabilization_window_s == 60
    assert behavior.scale_down.policies == hpa.scale_down.policies
    assert behavior.scale_down.select is SelectPolicy.MAX
    assert behavior.scale_up.stabilization_window_s == 0
    assert behavior.scale_up.select is SelectPolicy.MIN
    assert behavior.scale_up.policies == (RatePolicy(kind=PolicyKind.PODS, value=2, period_s=30),)


def test_queue_refs_name_every_queue_with_its_weight_kind_and_group() -> None:
    spec = PoolSpec.parse(
        {
            "broker": {
                "kind": "stream",
                "consumerGroup": "agents",
                "queues": [{"name": "urgent", "weight": 3}, {"name": "bulk", "weight": 0.5}],
                "redis": REDIS,
            }
        }
    )
    assert spec.queue_refs() == (
        QueueRef(kind=BrokerKind.STREAM, name="urgent", weight=3.0, consumer_group="agents"),
        QueueRef(kind=BrokerKind.STREAM, name="bulk", weight=0.5, consumer_group="agents"),
    )


def test_an_existing_deployment_can_be_named_instead_of_a_template() -> None:
    spec = PoolSpec.parse(minimal(scaleTargetRef={"name": "agent-workers"}))
    assert spec.scale_target_ref is not None
    assert (spec.scale_target_ref.api_version, spec.scale_target_ref.kind) == (
        "apps/v1",
        "Deployment",
    )


def test_the_worker_template_is_kept_as_written() -> None:
    template = {"spec": {"containers": [{"name": "worker", "image": "agent:1", "args": ["x"]}]}}
    spec = PoolSpec.parse(minimal(worker={"template": template}))
    assert spec.worker.template == template


def test_a_spec_cannot_be_changed_once_parsed() -> None:
    spec = PoolSpec.parse(minimal())
    with pytest.raises(pydantic.ValidationError):
        spec.scaling.max_replicas = 3  # type: ignore[misc]
