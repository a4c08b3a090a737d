"""Bad specs are refused with errors that name the field path and say what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from taskiq_fleet.spec import InvalidPoolSpecError, PoolSpec

REDIS = {"urlSecretRef": {"name": "redis", "key": "url"}}


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidPoolSpecError) as caught:
        PoolSpec.parse(data, what="TaskiqWorkerPool shop/orders")
    assert str(caught.value).startswith("TaskiqWorkerPool shop/orders is invalid: ")
    return list(caught.value.problems)


def with_scaling(**scaling: Any) -> dict[str, Any]:
    return {"broker": {"redis": REDIS}, "scaling": scaling}


def test_min_replicas_above_max_replicas_is_refused() -> None:
    assert problems_of(with_scaling(minReplicas=5, maxReplicas=3)) == [
        "spec.scaling.minReplicas: must not exceed maxReplicas (5 > 3)"
    ]


@pytest.mark.parametrize("target", [0, -1])
def test_a_target_per_replica_must_be_positive(target: int) -> None:
    [problem] = problems_of(with_scaling(targetPerReplica=target))
    assert problem.startswith("spec.scaling.targetPerReplica: ")
    assert "greater than 0" in problem


def test_negative_bounds_and_thresholds_are_refused_each_by_name() -> None:
    found = problems_of(
        with_scaling(minReplicas=-1, maxReplicas=0, activationThreshold=-2, fallbackReplicas=-1)
    )
    assert [p.split(":")[0] for p in found] == [
        "spec.scaling.minReplicas",
        "spec.scaling.maxReplicas",
        "spec.scaling.activationThreshold",
        "spec.scaling.fallbackReplicas",
    ]


def test_a_fallback_outside_the_bounds_is_refused() -> None:
    assert problems_of(with_scaling(maxReplicas=4, fallbackReplicas=6)) == [
        "spec.scaling.fallbackReplicas: must be between minReplicas and maxReplicas (0 to 4), not 6"
    ]


def test_a_misspelled_field_is_refused_by_its_path() -> None:
    assert problems_of(with_scaling(maxReplica=4)) == [
        "spec.scaling.maxReplica: Extra inputs are not permitted"
    ]


def test_hpa_policy_errors_point_into_the_policy_list() -> None:
    behavior = {
        "scaleUp": {
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Pod", "value": 0, "periodSeconds": 3600},
            ]
        },
        "scaleDown": {"stabilizationWindowSeconds": 7200, "selectPolicy": "Fastest"},
    }
    found = [p.split(":")[0] for p in problems_of(with_scaling(behavior=behavior))]
    assert found == [
        "spec.scaling.behavior.scaleUp.policies[1].type",
        "spec.scaling.behavior.scaleUp.policies[1].value",
        "spec.scaling.behavior.scaleUp.policies[1].periodSeconds",
        "spec.scaling.behavior.scaleDown.stabilizationWindowSeconds",
        "spec.scaling.behavior.scaleDown.selectPolicy",
    ]


def test_an_empty_policy_list_is_refused() -> None:
    [problem] = problems_of(with_scaling(behavior={"scaleUp": {"policies": []}}))
    assert problem.startswith("spec.scaling.behavior.scaleUp.policies: ")


def test_a_broker_needs_its_redis_secret() -> None:
    assert problems_of({"broker": {"kind": "list"}}) == ["spec.broker.redis: Field required"]
    assert problems_of({"broker": {"redis": {"urlSecretRef": {"name": "redis"}}}}) == [
        "spec.broker.redis.urlSecretRef.key: Field required"
    ]


def test_an_unknown_broker_kind_is_refused() -> None:
    [problem] = problems_of({"broker": {"kind": "pubsub", "redis": REDIS}})
    assert problem.startswith("spec.broker.kind: Input should be 'list' or 'stream'")


def test_queues_must_be_named_weighted_positively_and_unique() -> None:
    bad = {"queues": [{"name": ""}, {"name": "a", "weight": 0}], "redis": REDIS}
    assert [p.split(":")[0] for p in problems_of({"broker": bad})] == [
        "spec.broker.queues[0].name",
        "spec.broker.queues[1].weight",
    ]
    duplicate = {"queues": [{"name": "a"}, {"name": "a"}], "redis": REDIS}
    assert problems_of({"broker": duplicate}) == [
        "spec.broker.queues: queue names must be unique; repeated: ['a']"
    ]
    assert problems_of({"broker": {"queues": [], "redis": REDIS}})[0].startswith(
        "spec.broker.queues: "
    )


def test_a_template_and_a_scale_target_together_are_refused() -> None:
    data = {
        "broker": {"redis": REDIS},
        "worker": {"template": {"spec": {}}},
        "scaleTargetRef": {"name": "workers"},
    }
    [problem] = problems_of(data)
    assert problem.startswith("spec.scaleTargetRef: give either worker.template")


def test_a_secret_name_must_be_a_kubernetes_name() -> None:
    [problem] = problems_of({"broker": {"redis": {"urlSecretRef": {"name": "Redis!", "key": "u"}}}})
    assert problem.startswith("spec.broker.redis.urlSecretRef.name: ")


def test_worker_concurrency_must_be_at_least_one() -> None:
    [problem] = problems_of({"broker": {"redis": REDIS}, "worker": {"concurrency": 0}})
    assert problem.startswith("spec.worker.concurrency: ")


def test_the_error_names_the_object_but_never_the_input_values_of_secrets() -> None:
    with pytest.raises(InvalidPoolSpecError) as caught:
        PoolSpec.parse({"broker": {"redis": {"urlSecretRef": "redis://:pw@host"}}}, what="x")
    assert "pw@host" not in str(caught.value)
