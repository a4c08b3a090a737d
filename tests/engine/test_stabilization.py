"""Stabilization windows: a dip or a spike must last the whole window to move replicas."""

from __future__ import annotations

from taskiq_fleet.engine import default_behavior
from tests.engine.replay import Replay, fast_behavior, hpa_behavior, make_policy


def test_scale_down_waits_for_the_highest_recommendation_to_leave_the_window() -> None:
    replay = Replay(make_policy(behavior=fast_behavior(down_window_s=300)), replicas=10)
    replay.poll(0, waiting=100)
    held = replay.poll(15, waiting=20)
    assert held.desired == 10
    assert held.reason == "hold: scale-down stabilization; work 20 / target 10"
    assert replay.hold_load(start_s=30, end_s=285, every_s=15, waiting=20) == [10] * 18
    moved = replay.poll(300, waiting=20)
    assert moved.desired == 2
    assert moved.reason.startswith("scale down 10->2: work 20 / target 10")


def test_scale_down_goes_only_to_the_highest_recent_recommendation() -> None:
    replay = Replay(make_policy(behavior=fast_behavior(down_window_s=60)), replicas=10)
    replay.poll(0, waiting=100)
    replay.poll(30, waiting=60)
    decision = replay.poll(61, waiting=20)
    assert decision.desired == 6
    assert decision.reason == "scale down 10->6: work 20 / target 10; stabilized from 2"


def test_scale_up_waits_for_the_lowest_recommendation_to_leave_the_window() -> None:
    replay = Replay(make_policy(behavior=fast_behavior(up_window_s=60)), replicas=2)
    replay.poll(0, waiting=20)
    held = replay.poll(15, waiting=100)
    assert held.desired == 2
    assert held.reason == "hold: scale-up stabilization; work 100 / target 10"
    assert replay.hold_load(start_s=30, end_s=59, every_s=15, waiting=100) == [2, 2]
    assert replay.poll(60, waiting=100).desired == 10


def test_a_short_spike_within_the_scale_up_window_moves_nothing() -> None:
    replay = Replay(make_policy(behavior=fast_behavior(up_window_s=30)), replicas=2)
    replay.poll(0, waiting=20)
    replay.poll(10, waiting=200)
    replay.poll(20, waiting=20)
    assert replay.hold_load(start_s=30, end_s=90, every_s=10, waiting=20) == [2] * 7


def test_hpa_defaults_scale_up_at_once_and_scale_down_after_five_minutes() -> None:
    replay = Replay(make_policy(min_replicas=1, behavior=hpa_behavior()), replicas=4)
    assert replay.poll(0, waiting=80).desired == 8
    assert replay.hold_load(start_s=15, end_s=299, every_s=15, waiting=10) == [8] * 19
    assert replay.poll(301, waiting=10).desired == 1


def test_default_behavior_scales_down_half_a_minute_after_the_work_fell() -> None:
    replay = Replay(make_policy(min_replicas=1, behavior=default_behavior()), replicas=4)
    assert replay.poll(0, waiting=80).desired == 8
    assert replay.hold_load(start_s=2, end_s=28, every_s=2, waiting=10) == [8] * 14
    assert replay.poll(30, waiting=10).desired == 1


def test_with_no_memory_a_scale_in_waits_out_the_window_as_after_a_restart() -> None:
    # A restarted operator sees 10 replicas and little work: it keeps them for the window.
    replay = Replay(make_policy(min_replicas=1, behavior=default_behavior()), replicas=10)
    first = replay.poll(0, waiting=5)
    assert first.desired == 10
    assert first.reason.startswith("hold: scale-down stabilization")
    assert replay.hold_load(start_s=2, end_s=28, every_s=2, waiting=5) == [10] * 14
    assert replay.poll(31, waiting=5).desired == 1


def test_with_no_memory_a_scale_up_is_not_held() -> None:
    replay = Replay(make_policy(behavior=default_behavior()), replicas=2)
    assert replay.poll(0, waiting=90).desired == 9
