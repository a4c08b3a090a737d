"""Pods and Percent policies per period, and which one wins, as in HPA."""

from __future__ import annotations

from taskiq_fleet.engine import default_behavior
from taskiq_fleet.engine.types import Behavior, PolicyKind, RatePolicy, SelectPolicy
from tests.engine.replay import Replay, hpa_behavior, make_policy, rules

_NO_BRAKE = rules(("Percent", 10_000, 1.0))


def _up(*policies: tuple[str, int, float], select: SelectPolicy = SelectPolicy.MAX) -> Behavior:
    return Behavior(scale_up=rules(*policies, select=select), scale_down=_NO_BRAKE)


def _down(*policies: tuple[str, int, float], select: SelectPolicy = SelectPolicy.MAX) -> Behavior:
    return Behavior(scale_up=_NO_BRAKE, scale_down=rules(*policies, select=select))


def test_default_behavior_has_hpas_shape_with_no_scale_up_limit_and_a_30s_down_window() -> None:
    behavior = default_behavior()
    assert behavior.scale_up.stabilization_window_s == 0
    assert behavior.scale_up.policies == (
        RatePolicy(kind=PolicyKind.PODS, value=1000, period_s=15),
    )
    assert behavior.scale_up.select is SelectPolicy.MAX
    assert behavior.scale_down.stabilization_window_s == 30
    assert behavior.scale_down.policies == (
        RatePolicy(kind=PolicyKind.PERCENT, value=100, period_s=15),
    )
    assert behavior.scale_down.select is SelectPolicy.MAX


def test_default_scale_up_reaches_the_need_in_one_step() -> None:
    replay = Replay(make_policy(max_replicas=100), replicas=1)
    decision = replay.poll(0, waiting=1000)
    assert decision.desired == 100
    assert not decision.limited


def test_hpas_scale_up_takes_four_pods_or_doubles_whichever_is_more() -> None:
    replay = Replay(make_policy(max_replicas=100, behavior=hpa_behavior()), replicas=1)
    steps = [replay.poll(at_s, waiting=1000).desired for at_s in (0, 15, 30, 45, 60)]
    assert steps == [5, 10, 20, 40, 80]
    assert all(d.limited for d in replay.decisions)
    assert replay.decisions[0].reason.endswith("; limited by scale-up policy")


def test_a_pods_policy_counts_every_step_within_its_period() -> None:
    replay = Replay(make_policy(behavior=_up(("Pods", 4, 60))), replicas=1)
    assert replay.poll(0, waiting=1000).desired == 5
    held = replay.poll(15, waiting=1000)
    assert held.desired == 5
    assert held.reason.startswith("hold: limited by scale-up policy")
    assert replay.poll(61, waiting=1000).desired == 9


def test_a_percent_policy_grows_from_the_count_at_the_start_of_its_period() -> None:
    replay = Replay(make_policy(behavior=_up(("Percent", 50, 60))), replicas=4)
    assert replay.poll(0, waiting=1000).desired == 6
    assert replay.poll(30, waiting=1000).desired == 6
    assert replay.poll(61, waiting=1000).desired == 9


def test_select_min_takes_the_policy_allowing_the_smallest_change() -> None:
    behavior = _up(("Pods", 4, 15), ("Percent", 100, 15), select=SelectPolicy.MIN)
    replay = Replay(make_policy(max_replicas=100, behavior=behavior), replicas=10)
    assert replay.poll(0, waiting=1000).desired == 14


def test_disabled_scale_up_holds_whatever_the_load() -> None:
    replay = Replay(make_policy(behavior=_up(select=SelectPolicy.DISABLED)), replicas=3)
    decision = replay.poll(0, waiting=1000)
    assert decision.desired == 3
    assert decision.reason == "hold: scale-up disabled; work 1000 / target 10"


def test_scale_up_may_win_back_what_a_scale_down_removed_within_the_period() -> None:
    behavior = Behavior(scale_up=rules(("Pods", 4, 60)), scale_down=rules(("Pods", 4, 60)))
    replay = Replay(make_policy(behavior=behavior), replicas=10)
    assert replay.poll(0, waiting=10).desired == 6
    assert replay.poll(10, waiting=1000).reason.startswith("hold: work still rising")
    assert replay.poll(12, waiting=1000).desired == 14


def test_a_pods_policy_removes_at_most_its_value_per_period() -> None:
    replay = Replay(make_policy(min_replicas=1, behavior=_down(("Pods", 1, 30))), replicas=10)
    first = replay.poll(0, waiting=20)
    assert first.desired == 9
    assert first.reason == "scale down 10->9: work 20 / target 10; limited by scale-down policy"
    assert replay.poll(10, waiting=20).desired == 9
    assert replay.poll(31, waiting=20).desired == 8


def test_scale_down_steps_at_most_once_per_shortest_scale_down_period() -> None:
    behavior = Behavior(scale_up=_NO_BRAKE, scale_down=rules(("Percent", 100, 15)))
    replay = Replay(make_policy(min_replicas=1, behavior=behavior), replicas=10)
    assert replay.poll(0, waiting=50).desired == 5
    held = replay.poll(2, waiting=20)
    assert held.desired == 5
    assert held.limited
    assert held.reason == "hold: next scale-down step in 13s; work 20 / target 10"
    assert replay.poll(14, waiting=20).desired == 5
    assert replay.poll(15, waiting=20).desired == 2


def test_the_scale_down_step_rule_never_delays_a_scale_up() -> None:
    behavior = Behavior(scale_up=_NO_BRAKE, scale_down=rules(("Percent", 100, 15)))
    replay = Replay(make_policy(behavior=behavior), replicas=10)
    assert replay.poll(0, waiting=50).desired == 5
    assert replay.poll(2, waiting=200).desired == 20


def test_a_percent_policy_removes_at_most_its_share_per_period() -> None:
    replay = Replay(make_policy(min_replicas=1, behavior=_down(("Percent", 50, 60))), replicas=10)
    assert replay.poll(0, waiting=10).desired == 5
    assert replay.poll(30, waiting=10).desired == 5
    assert replay.poll(61, waiting=10).desired == 2


def test_scale_down_select_max_allows_the_biggest_drop_and_min_the_smallest() -> None:
    both = (("Pods", 2, 60), ("Percent", 50, 60))
    biggest = Replay(make_policy(min_replicas=1, behavior=_down(*both)), replicas=10)
    assert biggest.poll(0, waiting=10).desired == 5
    smallest = Replay(
        make_policy(min_replicas=1, behavior=_down(*both, select=SelectPolicy.MIN)), replicas=10
    )
    assert smallest.poll(0, waiting=10).desired == 8


def test_disabled_scale_down_holds_even_an_idle_pool_above_zero() -> None:
    behavior = _down(select=SelectPolicy.DISABLED)
    replay = Replay(make_policy(min_replicas=1, behavior=behavior), replicas=6)
    decision = replay.poll(0, waiting=0)
    assert decision.desired == 6
    assert decision.reason.startswith("hold: scale-down disabled")


def test_events_older_than_the_longest_period_are_forgotten() -> None:
    replay = Replay(make_policy(behavior=_up(("Pods", 1, 60))), replicas=1)
    for at_s in range(0, 600, 61):
        replay.poll(at_s, waiting=1000)
    assert len(replay.state.scale_events) == 1
