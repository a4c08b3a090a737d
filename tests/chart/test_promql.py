"""Every PromQL expression of the alerts and the dashboard parses and names real metrics.

The metric names are collected from the real registries of the operator and the
worker, so a renamed metric breaks these tests instead of a dashboard in production.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from taskiq_fleet.telemetry.metrics import FleetMetrics
from taskiq_fleet_worker.metrics import WorkerMetrics
from tests.chart.rendering import DASHBOARD_FILE, RULES_FILE, RULES_TEST_FILE

#: Series every Prometheus makes itself for each scrape target.
PROMETHEUS_OWN = frozenset({"up"})
#: Sample name suffixes by metric type, as the exposition format writes them.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "unknown": ("",),
}
#: Stand-ins for Grafana's variables, so the expressions are plain PromQL.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$namespace": ".*",
    "$pool": ".*",
}
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>[a-zA-Z_]\w*)\)$")


def exported_names(registry: CollectorRegistry) -> set[str]:
    """The sample names a registry exposes, including families with no series yet."""
    return {
        f"{family.name}{suffix}"
        for family in registry.collect()
        for suffix in SUFFIXES[family.type]
    }


@pytest.fixture(scope="module")
def known_metrics() -> frozenset[str]:
    operator = FleetMetrics(CollectorRegistry())
    worker = WorkerMetrics(CollectorRegistry())
    return frozenset(
        exported_names(operator.registry) | exported_names(worker.registry) | PROMETHEUS_OWN
    )


def dashboard_expressions() -> list[tuple[str, str]]:
    """(where, expression) for every panel target and every query variable."""
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    found: list[tuple[str, str]] = []

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            found.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"]
        match = LABEL_VALUES.match(query)
        assert match, f"variable {variable['name']}: {query!r} is not label_values(selector, label)"
        found.append((f"variable {variable['name']}", match["selector"]))
    return found


def plain_promql(expression: str) -> str:
    for variable, stand_in in GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, stand_in)
    assert "$" not in expression, f"unknown Grafana variable in {expression!r}"
    return expression


def rule_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load(RULES_FILE.read_text())
    return [
        (f"alert {rule['alert']}", rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
    ]


def test_the_alert_rules_pass_promtool_check_with_every_lint(promtool: Path) -> None:
    result = subprocess.run(
        [str(promtool), "check", "rules", "--lint=all", "--lint-fatal", str(RULES_FILE)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_every_alert_passes_its_promtool_unit_tests(promtool: Path) -> None:
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULES_TEST_FILE.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    }
    assert tested == {where.removeprefix("alert ") for where, _ in rule_expressions()}

    result = subprocess.run(
        [str(promtool), "test", "rules", RULES_TEST_FILE.name],
        cwd=RULES_TEST_FILE.parent, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_dashboard_expression_parses_in_promtool(promtool: Path, tmp_path: Path) -> None:
    # Wrapped as recording rules, the expressions go through Prometheus' own parser.
    rules = [
        {"record": f"taskiq_fleet_dashboard:expression_{index}", "expr": plain_promql(expr)}
        for index, (_, expr) in enumerate(dashboard_expressions())
    ]
    rule_file = tmp_path / "dashboard.rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = subprocess.run(
        [str(promtool), "check", "rules", str(rule_file)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_every_expression_names_only_metrics_that_are_exported(
    chartcheck: Path, known_metrics: frozenset[str]
) -> None:
    expressions = dashboard_expressions() + rule_expressions()
    result = subprocess.run(
        [str(chartcheck), "metrics"],
        input=json.dumps([plain_promql(expr) for _, expr in expressions]),
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    reports = json.loads(result.stdout)

    problems = []
    used: set[str] = set()
    for (where, _), report in zip(expressions, reports, strict=True):
        if report.get("error"):
            problems.append(f"{where}: {report['error']}")
        unknown = set(report["metrics"]) - known_metrics
        if unknown:
            problems.append(f"{where}: no such metric {sorted(unknown)}")
        used |= set(report["metrics"])
    assert problems == []
    # The checker must really see names, or the test above proves nothing.
    assert {"taskiq_fleet_pool_waiting_tasks", "taskiq_fleet_worker_tasks_failed_total"} <= used


def test_a_misspelled_metric_is_caught(chartcheck: Path, known_metrics: frozenset[str]) -> None:
    result = subprocess.run(
        [str(chartcheck), "metrics"],
        input=json.dumps(['sum by (pool) (rate(taskiq_fleet_scale_event_total{pool="a"}[5m]))']),
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip

    [report] = json.loads(result.stdout)
    assert report["metrics"] == ["taskiq_fleet_scale_event_total"]
    assert "taskiq_fleet_scale_event_total" not in known_metrics
    assert "taskiq_fleet_scale_events_total" in known_metrics


def test_the_dashboard_offers_data_source_namespace_and_pool_choices() -> None:
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}

    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["namespace"]["multi"]
    assert variables["pool"]["multi"]
    assert "$namespace" in variables["pool"]["query"]["query"]


def test_every_pool_panel_follows_the_namespace_and_pool_choice() -> None:
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    # Operator-wide series (scrape health, probe and decision timings) have no pool label.
    operator_wide = {"Operator up", "Decision lag and probe time"}
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        if panel["title"] in operator_wide:
            continue
        for target in panel["targets"]:
            assert 'namespace=~"$namespace"' in target["expr"], panel["title"]
            assert 'pool=~"$pool"' in target["expr"], panel["title"]
