"""`helm template` with default values and with every documented option, validated strictly.

Built-in kinds go through the official Kubernetes schemas with unknown fields refused
(kubernetes-validate, strict), for the oldest and the newest Kubernetes the chart
supports. Prometheus Operator kinds are decoded strictly into that operator's own Go
types by chartcheck; TaskiqWorkerPools are checked against the chart's CRD schema.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

# Comes with kubernetes-validate, which checks with it too.
import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import pytest
import yaml

from tests.chart.rendering import (
    CHART_DIR,
    CI_VALUES_DIR,
    DASHBOARD_FILE,
    MONITORING_API,
    RULES_FILE,
    Helm,
    Manifest,
    by_kind,
    one,
)

#: The oldest Kubernetes the chart declares (Chart.yaml kubeVersion) and a current one.
KUBE_SCHEMA_VERSIONS = ("1.28.0", "1.35.0")
ALL_OPTIONS = CI_VALUES_DIR / "all-options-values.yaml"
EXAMPLE_POOL = CI_VALUES_DIR / "example-pool-values.yaml"
MONITORING_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
STANDARD_LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
)


def crd_schema() -> dict[str, object]:
    crds = [yaml.safe_load(path.read_text()) for path in (CHART_DIR / "crds").glob("*.yaml")]
    [crd] = [crd for crd in crds if crd["spec"]["names"]["kind"] == "TaskiqWorkerPool"]
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema: dict[str, object] = version["schema"]["openAPIV3Schema"]
    return schema


def validate_all(manifests: Sequence[Manifest], *, chartcheck: Path) -> None:
    """Every object valid for its kind; fails with the object and the reason."""
    problems = []
    monitoring = [doc for doc in manifests if doc["kind"] in MONITORING_KINDS]
    pools = by_kind(manifests, "TaskiqWorkerPool")
    for doc in manifests:
        if doc in monitoring or doc in pools:
            continue
        # The CRD uses CEL rule fields (fieldPath, reason) that Kubernetes 1.28 added.
        is_crd = doc["kind"] == "CustomResourceDefinition"
        versions = KUBE_SCHEMA_VERSIONS[-1:] if is_crd else KUBE_SCHEMA_VERSIONS
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                name = f"{doc['kind']}/{doc['metadata']['name']}"
                problems.append(f"{name} on {version}: {error.message} at {list(error.path)}")
    if monitoring:
        result = subprocess.run(
            [str(chartcheck), "monitoring"],
            input=yaml.safe_dump_all(monitoring),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            problems.append(result.stdout + result.stderr)
    schema = crd_schema()
    for pool in pools:
        # OpenAPI v3.0 schemas follow JSON Schema draft 4 (boolean exclusiveMinimum).
        for refusal in jsonschema.Draft4Validator(schema).iter_errors(pool):
            problems.append(f"TaskiqWorkerPool/{pool['metadata']['name']}: {refusal.message}")
    assert problems == []


def test_default_values_render_valid_objects(helm: Helm, chartcheck: Path) -> None:
    manifests = helm.template(include_crds=True)

    validate_all(manifests, chartcheck=chartcheck)
    kinds = {doc["kind"] for doc in manifests}
    assert {"CustomResourceDefinition", "ServiceAccount", "Deployment", "Service"} <= kinds
    assert "ConfigMap" in kinds  # the dashboard is on by default
    assert not kinds & MONITORING_KINDS


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PodMonitor"])
def test_every_documented_option_renders_valid_objects(
    helm: Helm, chartcheck: Path, kind: str
) -> None:
    manifests = helm.template(
        values_files=[ALL_OPTIONS],
        set_values=[f"monitoring.operator.kind={kind}"],
        api_versions=[MONITORING_API],
    )

    validate_all(manifests, chartcheck=chartcheck)
    kinds = [doc["kind"] for doc in manifests]
    # The worker PodMonitor is always a PodMonitor; the operator's is the chosen kind.
    assert kinds.count(kind) == (2 if kind == "PodMonitor" else 1)
    assert {"PodMonitor", "PrometheusRule", "TaskiqWorkerPool", "Secret"} <= set(kinds)


def test_the_example_pool_renders_valid_objects(helm: Helm, chartcheck: Path) -> None:
    manifests = helm.template(values_files=[EXAMPLE_POOL])

    validate_all(manifests, chartcheck=chartcheck)
    pool = one(manifests, "TaskiqWorkerPool")
    assert pool["spec"]["broker"]["redis"]["urlSecretRef"] == {"name": "agents-redis", "key": "url"}


def test_a_monitoring_object_with_an_unknown_field_is_refused(chartcheck: Path) -> None:
    # The check must be able to fail: `endpoint` (singular) is not a ServiceMonitor field.
    wrong = {
        "apiVersion": MONITORING_API,
        "kind": "ServiceMonitor",
        "metadata": {"name": "typo"},
        "spec": {"selector": {}, "endpoint": [{"port": "metrics"}]},
    }
    result = subprocess.run(
        [str(chartcheck), "monitoring"], input=yaml.safe_dump(wrong),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode == 1
    assert "ServiceMonitor/typo: " in result.stdout
    assert 'unknown field "endpoint"' in result.stdout


def test_monitoring_objects_render_only_when_the_cluster_serves_their_api(helm: Helm) -> None:
    enabled = [
        "monitoring.operator.enabled=true",
        "monitoring.workers.enabled=true",
        "monitoring.rules.enabled=true",
    ]
    without_api = helm.template(set_values=enabled)
    with_api = helm.template(set_values=enabled, api_versions=[MONITORING_API])

    assert not {doc["kind"] for doc in without_api} & MONITORING_KINDS
    assert sorted(doc["kind"] for doc in with_api if doc["kind"] in MONITORING_KINDS) == [
        "PodMonitor",
        "PrometheusRule",
        "ServiceMonitor",
    ]


def test_monitoring_objects_carry_the_labels_prometheus_selects_by(helm: Helm) -> None:
    manifests = helm.template(values_files=[ALL_OPTIONS], api_versions=[MONITORING_API])

    for doc in manifests:
        if doc["kind"] in MONITORING_KINDS:
            assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack"
            assert doc["metadata"]["namespace"] == "monitoring"


def test_the_operator_monitor_keeps_the_pool_namespace_and_a_fixed_job(helm: Helm) -> None:
    manifests = helm.template(
        set_values=["monitoring.operator.enabled=true"], api_versions=[MONITORING_API]
    )

    [endpoint] = one(manifests, "ServiceMonitor")["spec"]["endpoints"]
    # The operator's own `namespace` label names the pool's namespace: it must win.
    assert endpoint["honorLabels"] is True
    assert {"action": "replace", "targetLabel": "job", "replacement": "taskiq-fleet-operator"} in (
        endpoint["relabelings"]
    )
    assert 'job="taskiq-fleet-operator"' in RULES_FILE.read_text()


def test_the_prometheus_rule_is_the_rules_file_less_disabled_alerts(helm: Helm) -> None:
    manifests = helm.template(values_files=[ALL_OPTIONS], api_versions=[MONITORING_API])
    rendered = one(manifests, "PrometheusRule")["spec"]["groups"]
    source = yaml.safe_load(RULES_FILE.read_text())["groups"]

    expected = []
    for group in source:
        rules = []
        for rule in group["rules"]:
            if rule["alert"] == "TaskiqFleetOldestTaskTooOld":
                continue
            rules.append({**rule, "labels": {**rule["labels"], "team": "platform"}})
        expected.append({"name": group["name"], "rules": rules})
    assert rendered == expected


def test_the_dashboard_config_map_holds_the_dashboard_file(helm: Helm) -> None:
    default = one(helm.template(), "ConfigMap")
    custom = one(helm.template(values_files=[ALL_OPTIONS]), "ConfigMap")

    assert default["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    assert json.loads(default["data"]["taskiq-fleet.json"]) == dashboard
    assert custom["metadata"]["labels"]["grafana_dashboard_fleet"] == "yes"
    assert "grafana_dashboard" not in custom["metadata"]["labels"]
    assert custom["metadata"]["annotations"] == {"grafana_folder": "Taskiq"}
    assert custom["metadata"]["namespace"] == "monitoring"
    assert by_kind(helm.template(set_values=["dashboard.enabled=false"]), "ConfigMap") == []


def test_every_object_carries_the_standard_labels(helm: Helm) -> None:
    manifests = helm.template(values_files=[ALL_OPTIONS], api_versions=[MONITORING_API])

    for doc in manifests:
        labels = doc["metadata"].get("labels", {})
        missing = [key for key in STANDARD_LABELS if key not in labels]
        assert missing == [], f"{doc['kind']}/{doc['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/instance"] == "fleet"
        assert labels["team"] == "platform"
