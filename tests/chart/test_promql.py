"""Every PromQL expression of the alerts and the dashboard parses and names real series.

Names and labels come from the operator's and the worker's real registries (see
tests/chart/promql.py), so a renamed metric or label fails here first.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.chart.promql import (
    Expression,
    dashboard_expressions,
    inspect,
    known_series,
    plain_promql,
    rule_expressions,
)
from tests.chart.rendering import RULES_FILE, RULES_TEST_FILE

LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@pytest.fixture(scope="module")
def series() -> dict[str, frozenset[str]]:
    return known_series()


def problems_of(
    chartcheck: Path, expressions: list[Expression], series: dict[str, frozenset[str]]
) -> tuple[list[str], set[str]]:
    """What is wrong with each expression, and every metric they name."""
    inspections = inspect(chartcheck, [plain_promql(e.expr) for e in expressions])
    problems: list[str] = []
    used: set[str] = set()
    for expression, inspection in zip(expressions, inspections, strict=True):
        where = expression.where
        if inspection.error:
            problems.append(f"{where}: {inspection.error}")
            continue
        labels_in_reach: set[str] = set()
        for selector in inspection.selectors:
            used.add(selector.metric)
            if selector.metric not in series:
                problems.append(f"{where}: no such metric {selector.metric}")
                continue
            labels_in_reach |= series[selector.metric]
            unknown = set(selector.labels) - series[selector.metric]
            if unknown:
                problems.append(f"{where}: {selector.metric} has no label {sorted(unknown)}")
        unknown = set(inspection.grouping) - labels_in_reach
        if unknown:
            problems.append(f"{where}: groups or matches by unknown label {sorted(unknown)}")
        # A legend can only show labels that survive the aggregation.
        shown = set(LEGEND_LABEL.findall(expression.legend))
        available = set(inspection.grouping) or labels_in_reach
        if shown - available:
            problems.append(f"{where}: legend shows {sorted(shown - available)}, not in result")
    return problems, used


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
    assert tested == {e.where.removeprefix("alert ") for e in rule_expressions()}

    result = subprocess.run(
        [str(promtool), "test", "rules", RULES_TEST_FILE.name],
        cwd=RULES_TEST_FILE.parent, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_dashboard_expression_parses_in_promtool(promtool: Path, tmp_path: Path) -> None:
    # Wrapped as recording rules, the expressions go through promtool's own checks.
    rules = [
        {"record": f"taskiq_fleet_dashboard:expression_{index}", "expr": plain_promql(e.expr)}
        for index, e in enumerate(dashboard_expressions())
    ]
    rule_file = tmp_path / "dashboard.rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = subprocess.run(
        [str(promtool), "check", "rules", str(rule_file)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_every_expression_names_only_exported_metrics_and_labels(
    chartcheck: Path, series: dict[str, frozenset[str]]
) -> None:
    problems, used = problems_of(chartcheck, dashboard_expressions() + rule_expressions(), series)

    assert problems == []
    # The inspection must really see names, or the assertion above proves nothing.
    assert {"taskiq_fleet_pool_waiting_tasks", "taskiq_fleet_worker_tasks_failed_total"} <= used


@pytest.mark.parametrize(
    ("expr", "legend", "expected"),
    [
        ("rate(taskiq_fleet_scale_event_total[5m])", "", "no such metric"),
        ('taskiq_fleet_pool_replicas{knd="max"}', "", "has no label ['knd']"),
        ("sum by (reasons) (taskiq_fleet_scale_events_total)", "", "unknown label ['reasons']"),
        ("sum by (pool) (taskiq_fleet_pool_waiting_tasks)", "{{queue}}", "legend shows ['queue']"),
        ("sum(rate(taskiq_fleet_worker_tasks_failed_total[5m]", "", "parse error"),
    ],
)
def test_a_wrong_name_or_label_is_caught(
    chartcheck: Path, series: dict[str, frozenset[str]], expr: str, legend: str, expected: str
) -> None:
    problems, _ = problems_of(chartcheck, [Expression("probe", expr, legend)], series)

    assert len(problems) == 1
    assert expected in problems[0]


def test_the_registries_are_read_with_their_labels(series: dict[str, frozenset[str]]) -> None:
    assert {"namespace", "pool", "kind"} <= series["taskiq_fleet_pool_replicas"]
    assert {"direction", "reason"} <= series["taskiq_fleet_scale_events_total"]
    assert "version" in series["taskiq_fleet_build_info"]
    assert {"task_name", "pool", "le"} <= series["taskiq_fleet_worker_task_duration_seconds_bucket"]
    assert "le" not in series["taskiq_fleet_worker_task_duration_seconds_count"]
