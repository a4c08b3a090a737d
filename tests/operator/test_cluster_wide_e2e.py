"""Cluster-wide: the chart's ClusterRole serves a namespace nobody named, and a pool that
scales an existing Deployment changes its replicas, owns nothing and leaves it behind.

The operator runs with ``--all-namespaces`` as the ServiceAccount the chart binds with
its ClusterRole when no namespaces are listed (the chart's default). Every API call it
makes must be allowed: a rule the ClusterRole lacks fails the module.
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
    denied_lines,
    get_json,
    own_operator,
    pool_manifest,
    push_tasks,
    render_identity,
    wait_for,
    without_crd,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

NAMESPACE = "fleet-e2e-wide"


@pytest.fixture(scope="module")
def wide_operator(
    kube: KubeCluster, fleet_identity: Identity, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    objects = without_crd(render_identity(kube, release="wide", namespace=OPERATOR_NAMESPACE))
    kinds = {obj["kind"] for obj in objects}
    assert {"ClusterRole", "ClusterRoleBinding", "ServiceAccount"} <= kinds
    assert "Role" not in kinds
    with own_operator(
        kube, namespace=NAMESPACE, objects=objects, all_namespaces=True,
        log_dir=tmp_path_factory.mktemp("wide"),
    ) as process:  # fmt: skip
        yield process
    denied = denied_lines(process.log())
    assert denied == [], "the chart's ClusterRole refused the operator:\n" + "\n".join(denied[:10])


def _apply(kube: KubeCluster, manifest: dict[str, Any]) -> None:
    kube.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def _redis_secret(kube: KubeCluster, fleet_redis: FleetRedis, name: str) -> None:
    _apply(
        kube,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "stringData": {"url": fleet_redis.fleet_url()},
        },
    )


def _plain_deployment(name: str, *, replicas: int) -> dict[str, Any]:
    """A Deployment of the user's own, made without the operator."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "registry.invalid/own:1"}]},
            },
        },
    }


def _replicas(kube: KubeCluster, name: str) -> int | None:
    deployment = get_json(kube, "deployment", name, "-n", NAMESPACE)
    return None if deployment is None else int(deployment["spec"]["replicas"])


async def test_a_pool_in_a_namespace_nobody_named_is_served_and_deleted_with_its_own(
    kube: KubeCluster, wide_operator: OperatorProcess, fleet_redis: FleetRedis
) -> None:
    _redis_secret(kube, fleet_redis, "wide-redis")
    _apply(kube, _plain_deployment("bystander", replicas=1))
    _apply(kube, pool_manifest("wide", namespace=NAMESPACE, queue="wide-q", secret="wide-redis"))
    await wait_for(
        "the pool's Deployment",
        lambda: get_json(kube, "deployment", "wide", "-n", NAMESPACE),
        timeout_s=20,
        operator=wide_operator,
    )

    await push_tasks(fleet_redis.admin_url, queue="wide-q", count=25)
    await wait_for(
        "3 replicas for 25 tasks at 10 a replica",
        lambda: _replicas(kube, "wide") == 3,
        timeout_s=20,
        operator=wide_operator,
    )

    kube.kubectl("delete", keys.PLURAL, "wide", "-n", NAMESPACE, "--wait=true", timeout_s=60)
    await wait_for(
        "the pool's Deployment to be garbage-collected",
        lambda: get_json(kube, "deployment", "wide", "-n", NAMESPACE) is None,
        timeout_s=60,
        operator=wide_operator,
    )
    assert _replicas(kube, "bystander") == 1, "a Deployment the pool did not own went too"
    assert fleet_redis.password not in wide_operator.log()


async def test_a_pool_scales_a_deployment_it_does_not_own_and_leaves_it_when_deleted(
    kube: KubeCluster, wide_operator: OperatorProcess, fleet_redis: FleetRedis
) -> None:
    _redis_secret(kube, fleet_redis, "adopt-redis")
    _apply(kube, _plain_deployment("own-workers", replicas=1))
    manifest = pool_manifest("adopter", namespace=NAMESPACE, queue="adopt-q", secret="adopt-redis")
    del manifest["spec"]["worker"]["template"]
    manifest["spec"]["scaleTargetRef"] = {"name": "own-workers"}
    _apply(kube, manifest)

    await push_tasks(fleet_redis.admin_url, queue="adopt-q", count=35)
    await wait_for(
        "the existing Deployment scaled to 4 for 35 tasks",
        lambda: _replicas(kube, "own-workers") == 4,
        timeout_s=20,
        operator=wide_operator,
    )
    assert get_json(kube, "deployment", "adopter", "-n", NAMESPACE) is None
    deployment = get_json(kube, "deployment", "own-workers", "-n", NAMESPACE)
    assert deployment is not None
    assert not deployment["metadata"].get("ownerReferences")

    kube.kubectl("delete", keys.PLURAL, "adopter", "-n", NAMESPACE, "--wait=true", timeout_s=60)
    assert get_json(kube, keys.PLURAL, "adopter", "-n", NAMESPACE) is None
    assert _replicas(kube, "own-workers") == 4, "the pool's deletion changed a workload it named"
