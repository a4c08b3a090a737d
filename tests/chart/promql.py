"""What the alert rules and the dashboard query, and what the operator and workers export.

Exported series come from the real registries of the operator (FleetMetrics) and the
worker (WorkerMetrics), so a renamed metric or label breaks the chart tests instead of
a dashboard in production. Expressions are inspected by chartcheck, which uses
Prometheus' own parser.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from taskiq_fleet.telemetry.metrics import FleetMetrics
from taskiq_fleet_worker.metrics import WorkerMetrics
from tests.chart.rendering import DASHBOARD_FILE, RULES_FILE

#: Sample name suffixes by metric type, as the exposition format writes them.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}
#: Labels Prometheus adds to every series of a target scraped through the chart's
#: monitors; `namespace` of operator series is the pool's (honorLabels).
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "container", "endpoint"})
#: The operator is scraped through its Service.
OPERATOR_TARGET_LABELS = TARGET_LABELS | {"service"}
#: The worker PodMonitor copies the pod's pool label onto worker series.
WORKER_TARGET_LABELS = TARGET_LABELS | {"pool"}
#: Stand-ins for Grafana's variables, so the expressions are plain PromQL.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$namespace": ".*",
    "$pool": ".*",
}
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>[a-zA-Z_]\w*)\)$")


@dataclass(frozen=True)
class Expression:
    where: str
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Selector:
    metric: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Inspection:
    error: str
    selectors: tuple[Selector, ...]
    grouping: tuple[str, ...]


def _label_names(metrics: object) -> dict[str, frozenset[str]]:
    """Family name -> label names, for every metric held by a metrics object."""
    found: dict[str, frozenset[str]] = {}
    for wrapper in vars(metrics).values():
        if isinstance(wrapper, MetricWrapperBase):
            # Label names are only readable from the wrapper: a family without a
            # child yet has no samples to read them from.
            for family in wrapper.describe():
                found[family.name] = frozenset(wrapper._labelnames)
    return found


def exported_series(
    metrics: object, registry: CollectorRegistry, *, target_labels: frozenset[str]
) -> dict[str, frozenset[str]]:
    """Sample name -> the label names its series carry once scraped."""
    label_names = _label_names(metrics)
    series: dict[str, frozenset[str]] = {}
    for family in registry.collect():
        assert family.name in label_names, f"{family.name} is registered outside {metrics!r}"
        for suffix in SUFFIXES[family.type]:
            extra = {"le"} if suffix == "_bucket" else set()
            series[f"{family.name}{suffix}"] = label_names[family.name] | extra | target_labels
        # An Info's labels are its value: read them from its sample.
        for sample in family.samples:
            if sample.name in series:
                series[sample.name] |= frozenset(sample.labels)
    return series


def known_series() -> dict[str, frozenset[str]]:
    fleet = FleetMetrics(CollectorRegistry())
    operator = exported_series(fleet, fleet.registry, target_labels=OPERATOR_TARGET_LABELS)
    worker_metrics = WorkerMetrics(CollectorRegistry())
    worker = exported_series(
        worker_metrics, worker_metrics.registry, target_labels=WORKER_TARGET_LABELS
    )
    # Prometheus writes `up` itself for every target it scrapes.
    return {**operator, **worker, "up": OPERATOR_TARGET_LABELS}


def dashboard_expressions() -> list[Expression]:
    """Every panel target and every query variable of the dashboard."""
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    found: list[Expression] = []

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            where = f"panel {panel['title']!r} {target['refId']}"
            found.append(Expression(where, target["expr"], target.get("legendFormat", "")))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"]
        match = LABEL_VALUES.match(query)
        assert match, f"variable {variable['name']}: {query!r} is not label_values(selector, label)"
        found.append(Expression(f"variable {variable['name']}", match["selector"]))
    return found


def rule_expressions() -> list[Expression]:
    rules = yaml.safe_load(RULES_FILE.read_text())
    return [
        Expression(f"alert {rule['alert']}", rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
    ]


def plain_promql(expression: str) -> str:
    for variable, stand_in in GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, stand_in)
    assert "$" not in expression, f"unknown Grafana variable in {expression!r}"
    return expression


def inspect(chartcheck: Path, expressions: list[str]) -> list[Inspection]:
    """chartcheck's reading of each expression, in order."""
    result = subprocess.run(
        [str(chartcheck), "metrics"],
        input=json.dumps(expressions),
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    reports: list[Mapping[str, Any]] = json.loads(result.stdout)
    return [
        Inspection(
            error=report.get("error", ""),
            selectors=tuple(Selector(s["metric"], tuple(s["labels"])) for s in report["selectors"]),
            grouping=tuple(report["grouping"]),
        )
        for report in reports
    ]
