"""The operator holds the chart's permissions and no more: one taken away shows, by name.

A second operator runs as a ServiceAccount of its own, bound by the chart's Role
without the rule that lets it change replicas. Its pool must say in status, in an Event
and in a log line that access was denied: the log check that every other operator test
ends with must see it, so a rule the chart forgets fails the suite.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from taskiq_fleet.contract import keys
from tests.fixtures.kube import KubeCluster
from tests.operator.conftest import FleetRedis, Identity
from tests.operator.harness import (
    OPERATOR_NAMESPACE,
    OperatorProcess,
    condition,
    denied_lines,
    get_json,
    own_operator,
    pool_manifest,
    push_tasks,
    render_identity,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

NAMESPACE = "fleet-e2e-narrow"
SCALE_RESOURCES = {"deployments/scale", "statefulsets/scale"}


def without_scaling(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The identity objects, with the rule on the scale subresources cut from the Role."""
    kept = [obj for obj in objects if obj["kind"] in {"ServiceAccount", "Role", "RoleBinding"}]
    (role,) = [obj for obj in kept if obj["kind"] == "Role"]
    rules = role["rules"]
    role["rules"] = [rule for rule in rules if not SCALE_RESOURCES & set(rule["resources"])]
    assert len(role["rules"]) == len(rules) - 1
    return kept


@pytest.fixture(scope="module")
def narrow_operator(
    kube: KubeCluster, fleet_identity: Identity, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    objects = without_scaling(
        render_identity(kube, release="narrow", namespace=OPERATOR_NAMESPACE, watch=[NAMESPACE])
    )
    with own_operator(
        kube, namespace=NAMESPACE, objects=objects, log_dir=tmp_path_factory.mktemp("narrow")
    ) as process:
        yield process


async def test_a_permission_the_role_lacks_is_named_in_status_event_and_log(
    kube: KubeCluster, narrow_operator: OperatorProcess, fleet_redis: FleetRedis
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "narrow-redis", "namespace": NAMESPACE},
        "stringData": {"url": fleet_redis.fleet_url()},
    }
    kube.kubectl("apply", "-f", "-", input=json.dumps(secret))
    manifest = pool_manifest("narrow", namespace=NAMESPACE, queue="narrow-q", secret="narrow-redis")
    kube.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    await wait_for(
        "the Deployment",
        lambda: get_json(kube, "deployment", "narrow", "-n", NAMESPACE),
        timeout_s=15,
        operator=narrow_operator,
    )

    await push_tasks(fleet_redis.admin_url, queue="narrow-q", count=15)

    refused = await wait_for(
        "ScalingActive=False for lack of the scale permission",
        lambda: (
            condition(get_json(kube, keys.PLURAL, "narrow", "-n", NAMESPACE), "ScalingActive")
            .get("reason") == "ScaleFailed"
            and condition(get_json(kube, keys.PLURAL, "narrow", "-n", NAMESPACE), "ScalingActive")
        ),
        timeout_s=15,
        operator=narrow_operator,
    )  # fmt: skip
    assert "access denied" in refused["message"]
    assert "deployments/scale" in refused["message"]
    events = json.loads(kube.kubectl("get", "events", "-n", NAMESPACE, "-o", "json").stdout)
    assert ("narrow", "ScaleFailed") in {
        (event["involvedObject"]["name"], event["reason"]) for event in events["items"]
    }
    deployment = get_json(kube, "deployment", "narrow", "-n", NAMESPACE)
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 0
    assert any("deployments/scale" in line for line in denied_lines(narrow_operator.log()))
    assert fleet_redis.password not in narrow_operator.log()
