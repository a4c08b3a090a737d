"""The operator Deployment: one replica, its command line, a restricted pod, health probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from taskiq_fleet.handlers.command import command as operator_command
from tests.chart.rendering import CI_VALUES_DIR, Helm, Manifest, by_kind, one

ALL_OPTIONS = CI_VALUES_DIR / "all-options-values.yaml"


def operator_container(manifests: list[Manifest]) -> dict[str, Any]:
    deployment = one(manifests, "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


@pytest.mark.parametrize("values_files", [[], [ALL_OPTIONS]], ids=["defaults", "all-options"])
def test_the_operator_command_line_accepts_the_rendered_arguments(
    helm: Helm, values_files: list[Path]
) -> None:
    container = operator_container(helm.template(values_files=values_files))
    assert container["command"] == ["taskiq-fleet"]
    assert container["args"][0] == "operator"

    # click parses (and type-checks) every option without running the operator.
    with operator_command.make_context("operator", container["args"][1:]) as context:
        assert context.params["standalone"] is True
        assert context.params["metrics_port"] > 0


def test_a_flag_the_operator_lacks_would_be_refused() -> None:
    with pytest.raises(click.NoSuchOption):
        operator_command.make_context("operator", ["--standalone", "--no-such-flag"])


def test_one_operator_runs_at_a_time(helm: Helm) -> None:
    spec = one(helm.template(), "Deployment")["spec"]

    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_the_operator_runs_standalone_over_every_namespace_by_default(helm: Helm) -> None:
    container = operator_container(helm.template())

    assert container["command"] == ["taskiq-fleet"]
    assert container["args"][:3] == ["operator", "--standalone", "--all-namespaces"]
    assert not any(arg.startswith("--namespace") for arg in container["args"])


def test_watched_namespaces_become_namespace_flags(helm: Helm) -> None:
    container = operator_container(helm.template(set_values=["watchNamespaces={jobs,agents}"]))

    assert "--all-namespaces" not in container["args"]
    assert [arg for arg in container["args"] if arg.startswith("--namespace")] == [
        "--namespace=jobs",
        "--namespace=agents",
    ]


def test_the_operator_pod_meets_the_restricted_pod_security_level(helm: Helm) -> None:
    deployment = one(helm.template(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = operator_container([deployment])

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    # A read-only root still needs somewhere to write temporary files.
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]


def test_both_probes_ask_the_kopf_liveness_endpoint(helm: Helm) -> None:
    container = operator_container(helm.template(values_files=[ALL_OPTIONS]))

    assert "--liveness=http://0.0.0.0:8081/healthz" in container["args"]
    assert {"name": "health", "containerPort": 8081, "protocol": "TCP"} in container["ports"]
    for probe in (container["livenessProbe"], container["readinessProbe"]):
        assert probe["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["livenessProbe"]["periodSeconds"] == 15
    assert container["readinessProbe"]["failureThreshold"] == 2


def test_the_metrics_service_points_at_the_metrics_port(helm: Helm) -> None:
    manifests = helm.template(set_values=["metrics.port=9464"])
    service = one(manifests, "Service")
    container = operator_container(manifests)

    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9464, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert (
        service["spec"]["selector"]
        == one(manifests, "Deployment")["spec"]["selector"]["matchLabels"]
    )
    assert "--metrics-port=9464" in container["args"]
    assert {"name": "metrics", "containerPort": 9464, "protocol": "TCP"} in container["ports"]


def test_options_reach_the_operator_pod(helm: Helm) -> None:
    manifests = helm.template(values_files=[ALL_OPTIONS])
    pod = one(manifests, "Deployment")["spec"]["template"]
    container = operator_container(manifests)

    assert container["image"] == (
        "registry.example.com/taskiq-fleet@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )
    assert container["imagePullPolicy"] == "Always"
    assert container["args"][-3:] == [
        "--log-level=debug",
        "--log-format=json",
        "--status-figures-interval=10",
    ]
    assert {"name": "TZ", "value": "UTC"} in container["env"]
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "384Mi"}
    assert pod["metadata"]["labels"]["tier"] == "control"
    assert pod["metadata"]["annotations"] == {"example.com/scrape": "false"}
    assert pod["spec"]["serviceAccountName"] == "fleet-operator"
    assert pod["spec"]["priorityClassName"] == "system-cluster-critical"
    assert pod["spec"]["terminationGracePeriodSeconds"] == 45
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["spec"]["tolerations"][0]["key"] == "dedicated"
    assert "nodeAffinity" in pod["spec"]["affinity"]
    service_account = one(manifests, "ServiceAccount")
    assert service_account["metadata"]["name"] == "fleet-operator"
    assert service_account["metadata"]["annotations"] == {"iam.example.com/role": "fleet"}


def test_the_image_tag_defaults_to_the_app_version(helm: Helm) -> None:
    container = operator_container(helm.template())

    assert container["image"] == "ghcr.io/taskiq-fleet/taskiq-fleet:0.1.0"


def test_an_existing_service_account_is_used_and_not_created(helm: Helm) -> None:
    manifests = helm.template(set_values=["serviceAccount.create=false", "serviceAccount.name=ops"])

    assert by_kind(manifests, "ServiceAccount") == []
    assert one(manifests, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops"


def test_a_pool_redis_url_lives_only_in_its_secret(helm: Helm) -> None:
    url = "rediss://worker:s3cret-pass@redis.jobs.svc:6380/1"
    manifests = helm.template(values_files=[ALL_OPTIONS], set_values=[f"pools[0].redisUrl={url}"])

    [secret] = by_kind(manifests, "Secret")
    assert secret["metadata"] == {**secret["metadata"], "name": "agents-redis", "namespace": "jobs"}
    assert secret["stringData"] == {"url": url}
    pools = {pool["metadata"]["name"]: pool for pool in by_kind(manifests, "TaskiqWorkerPool")}
    assert pools["agents"]["spec"]["broker"]["redis"]["urlSecretRef"] == {
        "name": "agents-redis",
        "key": "url",
    }
    # The pool without redisUrl keeps the Secret it names and gets none made for it.
    assert pools["adopted"]["spec"]["broker"]["redis"]["urlSecretRef"]["name"] == "shared-redis"
    others = [doc for doc in manifests if doc is not secret]
    assert "s3cret-pass" not in yaml.safe_dump_all(others)
