"""Which Pods a scale-in takes first: the deletion costs planned from heartbeats."""

from __future__ import annotations

from taskiq_fleet.kube.pods import plan_costs


def test_idle_pods_cost_nothing_and_busy_ones_cost_their_tasks() -> None:
    plans = plan_costs(
        pods=[("busy", None), ("idle", None), ("starting", None), ("busier", "3")],
        in_flight_by_pod={"busy": 2, "idle": 0, "busier": 7},
    )

    assert [(plan.name, plan.cost) for plan in plans] == [
        ("idle", 0),
        ("starting", 0),
        ("busy", 2),
        ("busier", 7),
    ]
    assert [plan.name for plan in plans if plan.idle] == ["idle", "starting"]


def test_the_current_annotation_is_kept_for_comparison() -> None:
    (plan,) = plan_costs(pods=[("worker-1", "5")], in_flight_by_pod={"worker-1": 5})

    assert plan.current == "5"
    assert plan.cost == 5
