"""A paused pool keeps its replicas; bounds always hold and are reported as a limit."""

from __future__ import annotations

from tests.engine.replay import Replay, fast_behavior, make_policy


def test_a_paused_pool_keeps_exactly_its_current_replicas() -> None:
    replay = Replay(make_policy(min_replicas=2, max_replicas=5), replicas=9)
    decision = replay.poll(0, waiting=1000, paused=True)
    assert decision.desired == 9
    assert decision.held
    assert decision.reason == "paused: keeping 9 replicas"


def test_pausing_leaves_the_engine_memory_untouched() -> None:
    replay = Replay(make_policy(), replicas=3)
    replay.poll(0, waiting=30)
    before = replay.state
    replay.poll(5, waiting=0, paused=True)
    assert replay.state == before


def test_max_replicas_caps_the_desired_count_and_says_so() -> None:
    replay = Replay(make_policy(max_replicas=6, behavior=fast_behavior()), replicas=2)
    decision = replay.poll(0, waiting=1000)
    assert decision.desired == 6
    assert decision.limited
    assert decision.reason == "scale up 2->6: work 1000 / target 10; capped at maxReplicas 6"


def test_min_replicas_floors_the_desired_count_and_says_so() -> None:
    replay = Replay(make_policy(min_replicas=3, behavior=fast_behavior()), replicas=5)
    decision = replay.poll(0, waiting=10)
    assert decision.desired == 3
    assert decision.limited
    assert decision.reason.endswith("; capped at minReplicas 3")


def test_a_pool_above_a_lowered_maximum_comes_down_at_once() -> None:
    replay = Replay(make_policy(max_replicas=4), replicas=12)
    decision = replay.poll(0, waiting=1000)
    assert decision.desired == 4
    assert decision.reason.startswith("scale down 12->4:")


def test_a_decision_inside_the_bounds_is_not_limited() -> None:
    replay = Replay(make_policy(behavior=fast_behavior()), replicas=2)
    assert not replay.poll(0, waiting=50).limited


def test_a_pool_busy_all_through_a_pause_does_not_go_to_zero_when_it_resumes() -> None:
    replay = Replay(make_policy(scale_to_zero_after_s=300.0), replicas=5)
    replay.poll(0, waiting=50)
    for at_s in range(5, 1000, 5):
        replay.poll(at_s, waiting=50, paused=True)
    resumed = replay.poll(1000, waiting=0)
    assert resumed.desired > 0
    assert resumed.reason.endswith("idle for 5s, scale to zero after 300s")


def test_a_pause_with_an_unreadable_queue_restarts_the_idle_clock() -> None:
    replay = Replay(make_policy(scale_to_zero_after_s=300.0), replicas=2)
    replay.poll(0, waiting=0)
    replay.poll(400, waiting=None, in_flight=None, paused=True)
    assert replay.poll(402, waiting=0).desired > 0
