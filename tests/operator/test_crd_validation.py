"""The API server refuses invalid pools with a message naming the field, as PoolSpec does.

Each example goes to the real API server (a server-side dry run) and through
``PoolSpec.parse``; both must agree. Where the CRD is stricter on purpose, the example
says why, and the test checks that PoolSpec still accepts it (so the difference stays
a known one).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import pytest

from taskiq_fleet.contract import keys
from taskiq_fleet.spec import InvalidPoolSpecError, PoolSpec
from tests.fixtures.kube import KubeCluster
from tests.operator.conftest import Identity

pytestmark = pytest.mark.e2e

VALID: dict[str, Any] = {
    "broker": {
        "kind": "list",
        "queues": [{"name": "orders", "weight": 2}, {"name": "orders-low"}],
        "redis": {"urlSecretRef": {"name": "redis", "key": "url"}},
    },
    "worker": {
        "concurrency": 8,
        "drainTimeoutSeconds": 60,
        "template": {"spec": {"containers": [{"name": "worker", "image": "worker:1"}]}},
    },
    "scaling": {
        "minReplicas": 1,
        "maxReplicas": 30,
        "targetPerReplica": 5,
        "pollIntervalSeconds": 1.5,
        "fallbackReplicas": 3,
        "behavior": {
            "scaleDown": {
                "stabilizationWindowSeconds": 120,
                "selectPolicy": "Min",
                "policies": [{"type": "Pods", "value": 2, "periodSeconds": 30}],
            }
        },
    },
}


@dataclass(frozen=True)
class Example:
    name: str
    changes: dict[str, Any]
    field: str | None  # the field the refusal names; None: accepted
    crd_only: str = ""  # why only the CRD refuses it


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in; a value of None removes the key."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


EXAMPLES = [
    Example("the full example", {}, None),
    Example(
        "a stream pool with a consumer group",
        {"broker": {"kind": "stream", "consumerGroup": "agents"}},
        None,
    ),
    Example(
        "an existing Deployment instead of a template",
        {"worker": {"template": None}, "scaleTargetRef": {"name": "legacy-workers"}},
        None,
    ),
    Example("minReplicas above maxReplicas", {"scaling": {"minReplicas": 40}}, "minReplicas"),
    Example(
        "fallbackReplicas above maxReplicas",
        {"scaling": {"fallbackReplicas": 31}},
        "fallbackReplicas",
    ),
    Example("no queues", {"broker": {"queues": []}}, "queues"),
    Example(
        "a repeated queue name",
        {"broker": {"queues": [{"name": "a"}, {"name": "a"}]}},
        "queues",
    ),
    Example("a zero weight", {"broker": {"queues": [{"name": "a", "weight": 0}]}}, "weight"),
    Example("an unknown broker kind", {"broker": {"kind": "pubsub"}}, "kind"),
    Example("zero concurrency", {"worker": {"concurrency": 0}}, "concurrency"),
    Example("a negative target", {"scaling": {"targetPerReplica": -1}}, "targetPerReplica"),
    Example(
        "a secret without a key", {"broker": {"redis": {"urlSecretRef": {"key": None}}}}, "key"
    ),
    Example(
        "a rate policy of an unknown type",
        {
            "scaling": {
                "behavior": {
                    "scaleUp": {"policies": [{"type": "Nodes", "value": 1, "periodSeconds": 15}]}
                }
            }
        },
        "type",
    ),
    Example(
        "a template and a scaleTargetRef",
        {"scaleTargetRef": {"name": "legacy-workers"}},
        "scaleTargetRef",
    ),
    Example(
        "a consumer group on a list broker",
        {"broker": {"consumerGroup": "agents"}},
        "consumerGroup",
        crd_only="PoolSpec ignores the group of a list pool; the CRD tells the user",
    ),
    Example(
        "neither a template nor a scaleTargetRef",
        {"worker": {"template": None}},
        "scaleTargetRef",
        crd_only="the local supervisor needs neither; on Kubernetes one must be given",
    ),
    Example(
        "a scaleTargetRef of a kind the operator cannot scale",
        {"worker": {"template": None}, "scaleTargetRef": {"name": "x", "kind": "Job"}},
        "kind",
        crd_only="PoolSpec takes any kind; the operator scales Deployments and StatefulSets",
    ),
]


def manifest(name: str, spec: dict[str, Any], namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{keys.API_GROUP}/{keys.API_VERSION}",
        "kind": keys.KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.name)
def test_the_api_server_and_poolspec_agree_on_every_example(
    kube: KubeCluster, fleet_identity: Identity, example: Example
) -> None:
    spec = merged(VALID, example.changes)
    applied = kube.kubectl(
        "apply", "--dry-run=server", "-f", "-",
        input=json.dumps(manifest("example", spec, fleet_identity.pools_namespace)),
        check=False,
    )  # fmt: skip

    if example.field is None:
        assert applied.returncode == 0, applied.stderr
        PoolSpec.parse(spec)
        return

    assert applied.returncode != 0, f"the API server accepted {example.name}"
    assert f"spec.{example.field}" in applied.stderr or f".{example.field}" in applied.stderr, (
        applied.stderr
    )
    if example.crd_only:
        PoolSpec.parse(spec)
        return
    with pytest.raises(InvalidPoolSpecError) as refused:
        PoolSpec.parse(spec)
    assert example.field in str(refused.value)


def test_a_pool_name_too_long_for_its_deployment_is_refused(
    kube: KubeCluster, fleet_identity: Identity
) -> None:
    applied = kube.kubectl(
        "apply", "--dry-run=server", "-f", "-",
        input=json.dumps(manifest("x" * 64, VALID, fleet_identity.pools_namespace)),
        check=False,
    )  # fmt: skip

    assert applied.returncode != 0
    assert "metadata.name must be at most 63 characters" in applied.stderr
