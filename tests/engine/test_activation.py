"""Waking a pool at zero, KEDA-style: work above the activation threshold starts it."""

from __future__ import annotations

from taskiq_fleet.engine.types import Behavior
from tests.engine.replay import Replay, hpa_behavior, make_policy, rules


def test_one_waiting_task_wakes_a_pool_at_zero() -> None:
    replay = Replay(make_policy(), replicas=0)
    decision = replay.poll(0, waiting=1)
    assert decision.desired == 1
    assert decision.reason == "scale up 0->1: activated, work 1 / target 10"


def test_an_empty_queue_keeps_a_pool_at_zero() -> None:
    replay = Replay(make_policy(), replicas=0)
    decision = replay.poll(0, waiting=0)
    assert decision.desired == 0
    assert decision.reason == "hold: at zero, work 0 not above activation 0"
    assert not decision.limited


def test_work_up_to_the_activation_threshold_does_not_wake_the_pool() -> None:
    replay = Replay(make_policy(activation_threshold=5), replicas=0)
    assert replay.poll(0, waiting=5).desired == 0
    assert replay.poll(1, waiting=3, in_flight=3).desired == 1


def test_activation_applies_only_at_zero() -> None:
    replay = Replay(make_policy(activation_threshold=50, min_replicas=1), replicas=3)
    assert replay.poll(0, waiting=40).desired == 4


def test_by_default_a_burst_wakes_the_pool_with_all_it_needs_up_to_max_replicas() -> None:
    replay = Replay(make_policy(), replicas=0)
    decision = replay.poll(0, waiting=1000)
    assert decision.desired == 20
    assert decision.reason == (
        "scale up 0->20: activated, work 1000 / target 10; capped at maxReplicas 20"
    )


def test_a_burst_wakes_the_pool_as_an_hpa_behind_keda_would_grow_it() -> None:
    # KEDA's activation gives one replica, the HPA's first step max(+4 pods, +100%) four more.
    replay = Replay(make_policy(behavior=hpa_behavior()), replicas=0)
    decision = replay.poll(0, waiting=1000)
    assert decision.desired == 5
    assert decision.limited
    assert decision.reason == (
        "scale up 0->5: activated, work 1000 / target 10; limited by scale-up policy"
    )
    assert [replay.poll(t, waiting=1000).desired for t in (2, 16, 32)] == [5, 10, 20]


def test_percent_only_policies_wake_a_pool_at_zero_from_its_first_replica() -> None:
    percent = rules(("Percent", 100, 15))
    replay = Replay(make_policy(behavior=Behavior(scale_up=percent, scale_down=percent)))
    assert replay.poll(0, waiting=1000).desired == 2
    assert replay.poll(2, waiting=1000).desired == 2
    assert replay.poll(15, waiting=1000).desired == 4


def test_a_pool_below_its_minimum_is_raised_to_it_without_any_work() -> None:
    replay = Replay(make_policy(min_replicas=2), replicas=0)
    decision = replay.poll(0, waiting=0)
    assert decision.desired == 2
    assert decision.limited
    assert decision.reason.startswith("scale up 0->2:")
    assert decision.reason.endswith("; capped at minReplicas 2")


def test_after_waking_a_percent_only_policy_keeps_its_period() -> None:
    # The first replica is the activation's: the policy's period starts from one, not zero.
    percent = rules(("Percent", 100, 60))
    replay = Replay(make_policy(behavior=Behavior(scale_up=percent, scale_down=percent)))
    assert replay.poll(0, waiting=500).desired == 2
    assert replay.poll(2, waiting=500).desired == 2, "a second step within the 60 s period"
    assert replay.poll(62, waiting=500).desired == 4
