"""The Grafana dashboard: choices at the top, panels that follow them, a tidy grid."""

from __future__ import annotations

import json
from typing import Any

from tests.chart.rendering import DASHBOARD_FILE

#: Operator-wide series (scrape health, probe and decision timings) have no pool label.
OPERATOR_WIDE = {"Operator up", "Decision lag and probe time"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return loaded


def test_the_dashboard_offers_data_source_namespace_and_pool_choices() -> None:
    variables = {variable["name"]: variable for variable in dashboard()["templating"]["list"]}

    assert list(variables) == ["datasource", "namespace", "pool"]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["namespace"]["multi"]
    assert variables["pool"]["multi"]
    # Choosing a namespace narrows the pools offered.
    assert "$namespace" in variables["pool"]["query"]["query"]


def test_every_pool_panel_follows_the_namespace_and_pool_choice() -> None:
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        if panel["title"] in OPERATOR_WIDE:
            continue
        for target in panel["targets"]:
            assert 'namespace=~"$namespace"' in target["expr"], panel["title"]
            assert 'pool=~"$pool"' in target["expr"], panel["title"]


def test_the_panels_cover_queue_replicas_tasks_and_operator_health() -> None:
    titles = {panel["title"] for panel in dashboard()["panels"]}

    assert {"Queue", "Replicas", "Tasks (workers)", "Operator health"} <= titles
    assert {
        "Waiting tasks",
        "In flight",
        "Oldest task age",
        "Desired, current and ready replicas",
        "Replica changes by reason",
        "Task throughput",
        "Task failures",
        "Task duration",
        "Operator up",
        "Probe errors",
        "Last poll age",
        "Decision lag and probe time",
    } <= titles


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    panels = dashboard()["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))

    taken: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_every_panel_says_what_it_shows() -> None:
    for panel in dashboard()["panels"]:
        if panel["type"] != "row":
            assert len(panel.get("description", "")) > 20, panel["title"]
