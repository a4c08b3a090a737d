"""Scale to zero: only after a whole idle period, with nothing waiting and nothing running."""

from __future__ import annotations

from tests.engine.replay import Replay, fast_behavior, make_policy


def _idle_pool(**overrides: float) -> Replay:
    policy = make_policy(behavior=fast_behavior(), scale_to_zero_after_s=300, **overrides)
    replay = Replay(policy, replicas=3)
    replay.poll(0, waiting=25)
    return replay


def test_an_idle_pool_keeps_one_replica_until_the_idle_period_has_passed() -> None:
    replay = _idle_pool()
    decision = replay.poll(10, waiting=0)
    assert decision.desired == 1
    assert decision.reason == "scale down 3->1: idle for 10s, scale to zero after 300s"
    assert replay.hold_load(start_s=20, end_s=299, every_s=10, waiting=0) == [1] * 28


def test_an_idle_pool_scales_to_zero_after_the_idle_period() -> None:
    replay = _idle_pool()
    replay.hold_load(start_s=10, end_s=290, every_s=10, waiting=0)
    decision = replay.poll(300, waiting=0)
    assert decision.desired == 0
    assert decision.reason == "scale to zero: idle for 300s"


def test_the_idle_period_restarts_with_every_task_seen() -> None:
    replay = _idle_pool()
    replay.poll(200, waiting=1)
    assert replay.hold_load(start_s=210, end_s=490, every_s=10, waiting=0)[-1] == 1
    assert replay.poll(500, waiting=0).desired == 0


def test_tasks_in_flight_keep_the_pool_from_zero() -> None:
    replay = _idle_pool()
    seen = replay.hold_load(start_s=10, end_s=900, every_s=10, waiting=0, in_flight=1)
    assert min(seen) == 1


def test_scale_to_zero_jumps_straight_from_many_replicas() -> None:
    policy = make_policy(behavior=fast_behavior(down_window_s=600), scale_to_zero_after_s=120)
    replay = Replay(policy, replicas=8)
    replay.poll(0, waiting=80)
    assert replay.hold_load(start_s=10, end_s=110, every_s=10, waiting=0) == [8] * 11
    assert replay.poll(120, waiting=0).desired == 0


def test_a_pool_with_a_minimum_never_scales_to_zero() -> None:
    replay = _idle_pool(min_replicas=1)
    seen = replay.hold_load(start_s=10, end_s=1200, every_s=30, waiting=0)
    assert set(seen) == {1}
    assert replay.decisions[-1].reason == "hold: idle"


def test_the_first_poll_of_an_idle_pool_starts_the_idle_period() -> None:
    replay = Replay(make_policy(behavior=fast_behavior()), replicas=2)
    assert replay.poll(1000, waiting=0).desired == 1
    assert replay.poll(1299, waiting=0).desired == 1
    assert replay.poll(1300, waiting=0).desired == 0
