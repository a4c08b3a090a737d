"""The test control plane enforces what a real cluster enforces and runs Pods on kwok Nodes."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.kube import FAKE_NODE_NAMES, REPO_ROOT, KubeCluster

RESTRICTED_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _pinned_versions() -> dict[str, str]:
    lines = (REPO_ROOT / "tools" / "controlplane" / "versions.env").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


@pytest.fixture
def restricted_namespace(kube: KubeCluster) -> Iterator[str]:
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
        },
    }
    kube.kubectl("apply", "-f", "-", input=json.dumps(namespace))
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false")


def _deployment(name: str, *, replicas: int) -> dict[str, object]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "worker",
                            "image": "registry.invalid/worker:1",
                            "securityContext": RESTRICTED_CONTAINER_SECURITY,
                        }
                    ]
                },
            },
        },
    }


def test_the_servers_report_the_pinned_kubernetes_version(kube: KubeCluster) -> None:
    versions = json.loads(kube.kubectl("version", "-o", "json").stdout)
    pinned = _pinned_versions()["KUBERNETES_VERSION"]

    assert versions["clientVersion"]["gitVersion"] == pinned
    # A cluster named by KUBECONFIG runs its own release; ours must run the pinned one.
    expected_server = versions["serverVersion"]["gitVersion"] if kube.external else pinned
    assert versions["serverVersion"]["gitVersion"] == expected_server
    assert versions["serverVersion"]["gitVersion"].startswith("v1.")


def test_helm_reaches_the_cluster(kube: KubeCluster) -> None:
    assert kube.helm("version", "--short").stdout.startswith(_pinned_versions()["HELM_VERSION"])
    # helm list exits non-zero with "Kubernetes cluster unreachable" when it cannot connect.
    releases = json.loads(kube.helm("list", "--all-namespaces", "-o", "json").stdout)
    assert isinstance(releases, list)


def test_a_compliant_deployment_becomes_available_with_pods_running_on_kwok_nodes(
    kube: KubeCluster, restricted_namespace: str
) -> None:
    kube.kubectl(
        "apply",
        f"--namespace={restricted_namespace}",
        "-f",
        "-",
        input=json.dumps(_deployment("compliant", replicas=3)),
    )

    kube.kubectl(
        "wait",
        f"--namespace={restricted_namespace}",
        "--for=condition=Available",
        "--timeout=60s",
        "deployment/compliant",
    )
    pods = json.loads(
        kube.kubectl("get", "pods", f"--namespace={restricted_namespace}", "-o", "json").stdout
    )["items"]
    assert len(pods) == 3
    assert {pod["status"]["phase"] for pod in pods} == {"Running"}
    assert {pod["spec"]["nodeName"] for pod in pods} <= set(FAKE_NODE_NAMES)


def test_a_privileged_pod_is_refused_by_pod_security_admission(
    kube: KubeCluster, restricted_namespace: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged"},
        "spec": {
            "containers": [
                {
                    "name": "worker",
                    "image": "registry.invalid/worker:1",
                    "securityContext": {"privileged": True},
                }
            ]
        },
    }

    refused = kube.kubectl(
        "apply",
        f"--namespace={restricted_namespace}",
        "-f",
        "-",
        input=json.dumps(pod),
        check=False,
    )

    assert refused.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in refused.stderr
    assert "privileged" in refused.stderr
    missing = kube.kubectl(
        "get", "pod", "privileged", f"--namespace={restricted_namespace}", check=False
    )
    assert "NotFound" in missing.stderr


def _grant_pod_reading(kube: KubeCluster, *, namespace: str, account: str) -> None:
    kube.kubectl("create", "serviceaccount", account, f"--namespace={namespace}")
    kube.kubectl(
        "create", "role", "pod-reader", "--verb=get,list", "--resource=pods", f"-n={namespace}"
    )
    kube.kubectl(
        "create",
        "rolebinding",
        "pod-reader",
        "--role=pod-reader",
        f"--serviceaccount={namespace}:{account}",
        f"--namespace={namespace}",
    )


def test_a_service_account_may_do_only_what_rbac_grants_it(
    kube: KubeCluster, restricted_namespace: str
) -> None:
    _grant_pod_reading(kube, namespace=restricted_namespace, account="reader")
    reader = kube.service_account_kubeconfig(namespace=restricted_namespace, name="reader")

    def can_i(verb: str, resource: str) -> tuple[int, str]:
        result = kube.kubectl(
            "auth", "can-i", verb, resource, f"-n={restricted_namespace}",
            kubeconfig=reader,
            check=False,
        )  # fmt: skip
        return result.returncode, result.stdout.strip()

    assert can_i("list", "pods") == (0, "yes")
    assert can_i("list", "secrets") == (1, "no")
    assert can_i("create", "deployments") == (1, "no")
    allowed = kube.kubectl("get", "pods", f"-n={restricted_namespace}", kubeconfig=reader)
    assert allowed.returncode == 0
    refused = kube.kubectl(
        "get", "secrets", f"-n={restricted_namespace}", kubeconfig=reader, check=False
    )
    assert refused.returncode != 0
    assert "Forbidden" in refused.stderr
    assert f'"system:serviceaccount:{restricted_namespace}:reader"' in refused.stderr


def _get(url: str, *, token: str, ca_file: Path) -> int:
    """Status code of a GET made the way a Python client makes it: verified TLS, a bearer token."""
    request = urllib.request.Request(  # noqa: S310 - the https URL of the test API server
        url, headers={"Authorization": f"Bearer {token}"}
    )
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        with urllib.request.urlopen(  # noqa: S310 - the https URL of the test API server
            request, context=context, timeout=30
        ) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        # Gives up: the status code is the answer under test.
        return error.code


def test_a_python_client_with_a_minted_token_gets_403_for_what_rbac_does_not_grant(
    kube: KubeCluster, restricted_namespace: str
) -> None:
    _grant_pod_reading(kube, namespace=restricted_namespace, account="reader")
    reader = json.loads(
        kube.service_account_kubeconfig(namespace=restricted_namespace, name="reader").read_text()
    )
    token = reader["users"][0]["user"]["token"]
    assert kube.ca_file is not None
    base = f"{kube.server}/api/v1/namespaces/{restricted_namespace}"

    assert _get(f"{base}/pods", token=token, ca_file=kube.ca_file) == 200
    assert _get(f"{base}/secrets", token=token, ca_file=kube.ca_file) == 403
    assert _get(f"{base}/pods", token="not-a-token", ca_file=kube.ca_file) == 401
