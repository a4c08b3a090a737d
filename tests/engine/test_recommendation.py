"""How much work asks for how many replicas, before any brake."""

from __future__ import annotations

from tests.engine.replay import Replay, fast_behavior, make_policy


def test_desired_replicas_are_work_divided_by_target_rounded_up() -> None:
    replay = Replay(make_policy(behavior=fast_behavior()), replicas=2)
    decision = replay.poll(0, waiting=47)
    assert decision.desired == 5
    assert decision.reason == "scale up 2->5: work 47 / target 10"


def test_in_flight_tasks_count_as_work_next_to_waiting_ones() -> None:
    replay = Replay(make_policy(behavior=fast_behavior()), replicas=1)
    assert replay.poll(0, waiting=5, in_flight=60).desired == 7


def test_a_fractional_target_and_weighted_work_round_up() -> None:
    replay = Replay(make_policy(target_per_replica=2.5, behavior=fast_behavior()), replicas=1)
    decision = replay.poll(0, waiting=7.5, in_flight=0.5)
    assert decision.desired == 4
    assert "work 8 / target 2.5" in decision.reason


def test_work_within_the_tolerance_band_changes_nothing() -> None:
    replay = Replay(make_policy(behavior=fast_behavior()), replicas=10)
    for work in (91, 100, 109):
        decision = replay.poll(0, waiting=work)
        assert decision.desired == 10
        assert decision.reason.startswith("hold: within tolerance")


def test_work_just_outside_the_tolerance_band_scales() -> None:
    replay = Replay(make_policy(behavior=fast_behavior()), replicas=10)
    assert replay.poll(0, waiting=112).desired == 12
    replay = Replay(make_policy(behavior=fast_behavior()), replicas=10)
    assert replay.poll(0, waiting=88).desired == 9


def test_a_wider_tolerance_holds_more() -> None:
    replay = Replay(make_policy(tolerance=0.3, behavior=fast_behavior()), replicas=10)
    assert replay.poll(0, waiting=125).desired == 10
    assert replay.poll(1, waiting=135).desired == 14


def test_scale_in_keeps_the_replicas_in_flight_work_needs() -> None:
    replay = Replay(make_policy(behavior=fast_behavior()), replicas=10)
    decision = replay.poll(0, waiting=0, in_flight=41)
    assert decision.desired == 5
    assert decision.reason == "scale down 10->5: work 41 / target 10"


def test_details_carry_the_figures_behind_the_decision() -> None:
    replay = Replay(make_policy(behavior=fast_behavior()), replicas=1)
    details = replay.poll(0, waiting=30, in_flight=12).details
    assert details["work"] == 42
    assert details["waiting"] == 30
    assert details["in_flight"] == 12
    assert details["recommended"] == 5
