"""The chart and manifests/ on a real API server: install, upgrade, uninstall, apply.

Pods run on kwok's fake nodes, so "Available" is Kubernetes' own view: the
ReplicaSet could create the operator pod past Pod Security admission, the scheduler
placed it and the node reported it Ready.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from tests.chart.rendering import CHART_DIR, MONITORING_API, REPO_ROOT, parse_documents
from tests.fixtures.kube import KubeCluster

pytestmark = pytest.mark.e2e

MANIFESTS_DIR = REPO_ROOT / "manifests"
ROLLOUT_TIMEOUT = "120s"
#: Just enough of the Prometheus Operator's CRDs for the API server to serve its group.
MONITORING_KINDS = {
    "ServiceMonitor": "servicemonitors",
    "PodMonitor": "podmonitors",
    "PrometheusRule": "prometheusrules",
}


def restricted_namespace(kube: KubeCluster, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/warn": "restricted",
            },
        },
    }
    kube.kubectl("apply", "-f", "-", input=json.dumps(namespace))
    return name


def wait_available(kube: KubeCluster, *, namespace: str, deployment: str) -> None:
    kube.kubectl(
        "wait", f"deployment/{deployment}", "--namespace", namespace,
        "--for=condition=Available", f"--timeout={ROLLOUT_TIMEOUT}",
    )  # fmt: skip


def deployment_args(kube: KubeCluster, *, namespace: str, deployment: str) -> list[str]:
    found = json.loads(
        kube.kubectl("get", f"deployment/{deployment}", "-n", namespace, "-o", "json").stdout
    )
    args: list[str] = found["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


@pytest.fixture
def namespace(kube: KubeCluster) -> Iterator[str]:
    name = restricted_namespace(kube, "chart")
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_install_upgrade_and_uninstall_in_a_restricted_namespace(
    kube: KubeCluster, namespace: str
) -> None:
    # A release named after the chart names its objects exactly like itself.
    release = f"taskiq-fleet-{namespace.rsplit('-', 1)[1]}"
    serves_monitoring = MONITORING_API in kube.kubectl("api-versions").stdout.split()
    installed = kube.helm(
        "install", release, str(CHART_DIR), "--namespace", namespace,
        "--set", f"watchNamespaces={{{namespace}}},monitoring.rules.enabled=true",
        "--wait", f"--timeout={ROLLOUT_TIMEOUT}",
    )  # fmt: skip

    # Pod Security admission warns about a workload it would refuse.
    assert "would violate PodSecurity" not in installed.stderr
    wait_available(kube, namespace=namespace, deployment=release)
    args = deployment_args(kube, namespace=namespace, deployment=release)
    assert f"--namespace={namespace}" in args
    # The notes say what to do next, and what was left out on this cluster.
    next_step = f"kubectl --namespace {namespace} rollout status deployment/{release}"
    assert next_step in installed.stdout
    warning = "WARNING: monitoring.rules.enabled is true but this cluster does not serve"
    assert (warning in installed.stdout) is not serves_monitoring

    # An upgrade changes the command line; Recreate brings the new pod up alone.
    kube.helm(
        "upgrade", release, str(CHART_DIR), "--namespace", namespace, "--reuse-values",
        "--set", "operator.logLevel=debug", "--wait", f"--timeout={ROLLOUT_TIMEOUT}",
    )  # fmt: skip
    wait_available(kube, namespace=namespace, deployment=release)
    assert "--log-level=debug" in deployment_args(kube, namespace=namespace, deployment=release)
    history = json.loads(kube.helm("history", release, "-n", namespace, "-o", "json").stdout)
    assert [entry["revision"] for entry in history] == [1, 2]
    assert history[-1]["status"] == "deployed"

    kube.helm("uninstall", release, "--namespace", namespace, "--wait")
    left = kube.kubectl(
        "get", "deployments,services,serviceaccounts,configmaps", "-n", namespace,
        "-l", f"app.kubernetes.io/instance={release}", "-o", "name",
    )  # fmt: skip
    assert left.stdout.strip() == ""
    # Helm never deletes what it installed from crds/: pools outlive the operator.
    kube.kubectl("get", "crd", "taskiqworkerpools.taskiq-fleet.dev")


def test_a_wrong_value_is_refused_before_anything_is_installed(
    kube: KubeCluster, namespace: str
) -> None:
    refused = kube.helm(
        "install", "wrong", str(CHART_DIR), "--namespace", namespace,
        "--set", "monitoring.operator.kind=Probe", check=False,
    )  # fmt: skip

    assert refused.returncode != 0
    assert "at '/monitoring/operator/kind': value must be one of" in refused.stderr
    listed = kube.helm("list", "--namespace", namespace, "--all", "-o", "json")
    assert json.loads(listed.stdout) == []


@pytest.fixture
def monitoring_api(kube: KubeCluster) -> Iterator[None]:
    """Serve monitoring.coreos.com/v1 with schema-less CRDs, then take it away again."""
    crds = [
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.monitoring.coreos.com"},
            "spec": {
                "group": "monitoring.coreos.com",
                "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural, "listKind": f"{kind}List"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                ],
            },
        }
        for kind, plural in MONITORING_KINDS.items()
    ]
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": crds})
    kube.kubectl("apply", "-f", "-", input=manifest)
    names = [f"crd/{plural}.monitoring.coreos.com" for plural in MONITORING_KINDS.values()]
    kube.kubectl("wait", *names, "--for=condition=Established", "--timeout=60s")
    yield
    kube.kubectl("delete", *names, "--wait=false", check=False)


@pytest.mark.usefixtures("monitoring_api")
def test_monitoring_objects_follow_the_clusters_monitoring_api(
    kube: KubeCluster, namespace: str
) -> None:
    release = f"taskiq-fleet-{namespace.rsplit('-', 1)[1]}"
    kube.helm(
        "install", release, str(CHART_DIR), "--namespace", namespace,
        "--set", "monitoring.operator.enabled=true,monitoring.rules.enabled=true",
        "--set", "monitoring.workers.enabled=true,monitoring.labels.release=kps",
    )  # fmt: skip

    group = MONITORING_API.split("/")[0]
    found = kube.kubectl(
        "get", f"servicemonitors.{group},podmonitors.{group},prometheusrules.{group}",
        "-n", namespace,
        "-l", "release=kps", "-o", "json",
    )  # fmt: skip
    kinds = sorted(item["kind"] for item in json.loads(found.stdout)["items"])
    assert kinds == ["PodMonitor", "PrometheusRule", "ServiceMonitor"]
    kube.helm("uninstall", release, "--namespace", namespace, "--wait")


def test_kubectl_apply_of_the_manifests_on_a_fresh_cluster_runs_the_operator_and_a_pool(
    fresh_kube: KubeCluster,
) -> None:
    kube = fresh_kube
    assert kube.external or "taskiqworkerpools" not in kube.kubectl("get", "crd").stdout
    [namespace_doc] = parse_documents((MANIFESTS_DIR / "00-namespace.yaml").read_text())
    namespace = namespace_doc["metadata"]["name"]
    try:
        applied = kube.kubectl("apply", "-f", str(MANIFESTS_DIR))
        assert "would violate PodSecurity" not in applied.stderr
        kube.kubectl(
            "wait", "crd/taskiqworkerpools.taskiq-fleet.dev", "--for=condition=Established",
            "--timeout=60s",
        )  # fmt: skip
        wait_available(kube, namespace=namespace, deployment="taskiq-fleet")

        # The example pool passes the CRD's schema and CEL rules on the real server.
        kube.kubectl("apply", "-f", str(MANIFESTS_DIR / "example"))
        pool = json.loads(
            kube.kubectl("get", "taskiqworkerpool/agents", "-n", namespace, "-o", "json").stdout
        )
        assert pool["spec"]["broker"]["redis"]["urlSecretRef"]["name"] == "agents-redis"
        kube.kubectl("get", "secret/agents-redis", "-n", namespace)

        # What runs is what the manifests say: the server's defaults do not fight them.
        diff = kube.kubectl("diff", "-f", str(MANIFESTS_DIR), check=False)
        assert diff.returncode == 0, diff.stdout + diff.stderr
    finally:
        # The CRD stays: on a shared cluster, other tests may hold pools of their own.
        kube.kubectl(
            "delete", "--ignore-not-found", "--wait=false",
            "-f", str(MANIFESTS_DIR / "example"),
            "-f", str(MANIFESTS_DIR / "20-operator.yaml"),
            "-f", str(MANIFESTS_DIR / "00-namespace.yaml"),
            check=False,
        )  # fmt: skip
