"""helm lint, and values.schema.json refusing wrong values with messages a person can act on."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.chart.rendering import CHART_DIR, CI_VALUES_DIR, RULES_FILE, Helm, RenderError


@pytest.mark.parametrize(
    "values_file", [None, "example-pool-values.yaml", "all-options-values.yaml"]
)
def test_helm_lint_strict_is_clean(helm: Helm, values_file: str | None) -> None:
    args = ["lint", "--strict", str(CHART_DIR), "--kube-version", "1.35.0"]
    if values_file:
        args += ["--values", str(CI_VALUES_DIR / values_file)]
    result = helm.run(*args, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout
    assert "[ERROR]" not in result.stdout


@pytest.mark.parametrize(
    ("set_value", "expected"),
    [
        # A misspelled key names its path.
        ("monitoring.operator.enabeld=true", "'enabeld' not allowed"),
        ("replicas=2", "additional properties 'replicas' not allowed"),
        # A value outside a closed set lists the allowed ones.
        ("monitoring.operator.kind=Probe", "value must be one of 'ServiceMonitor', 'PodMonitor'"),
        ("operator.logLevel=verbose", "at '/operator/logLevel'"),
        # Wrong types say what they got and what they want.
        ("metrics.port=http", "at '/metrics/port': got string, want integer"),
        ("metrics.port=70000", "at '/metrics/port'"),
        ("watchNamespaces=jobs", "at '/watchNamespaces': got string, want array"),
        ("watchNamespaces={Jobs_1}", "at '/watchNamespaces/0'"),
        ("monitoring.operator.interval=30", "at '/monitoring/operator/interval'"),
        (
            "monitoring.rules.disabledAlerts={NoSuchAlert}",
            "at '/monitoring/rules/disabledAlerts/0'",
        ),
        ("pools[0].name=agents", "at '/pools/0': missing property 'spec'"),
        (
            "pools[0].name=agents,pools[0].spec.x=1,pools[0].redisUrl=http://redis",
            "/pools/0/redisUrl",
        ),
    ],
)
def test_a_wrong_value_is_refused_with_its_path(helm: Helm, set_value: str, expected: str) -> None:
    with pytest.raises(RenderError) as refused:
        helm.template(set_values=[set_value])

    message = str(refused.value)
    assert "values don't meet the specifications of the schema" in message
    assert expected in message


def test_the_schema_lists_exactly_the_alerts_of_the_rules_file() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    rules = yaml.safe_load(RULES_FILE.read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}

    disabled = schema["properties"]["monitoring"]["properties"]["rules"]["properties"]
    assert set(disabled["disabledAlerts"]["items"]["enum"]) == alerts


def test_every_default_value_is_described_in_the_schema() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())

    def walk(node: object, properties: dict[str, object], path: str) -> list[str]:
        missing: list[str] = []
        if not isinstance(node, dict):
            return missing
        for key, value in node.items():
            entry = properties.get(key)
            if not isinstance(entry, dict):
                missing.append(f"{path}{key}")
                continue
            if "properties" in entry:
                missing += walk(value, entry["properties"], f"{path}{key}.")
        return missing

    assert walk(values, schema["properties"], "") == []
