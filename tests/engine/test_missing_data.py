"""A queue that cannot be read never makes the pool smaller, unless a fallback says so."""

from __future__ import annotations

from tests.engine.replay import Replay, fast_behavior, make_policy


def test_a_failed_probe_holds_the_current_replicas() -> None:
    replay = Replay(make_policy(behavior=fast_behavior()), replicas=5)
    decision = replay.poll(0, waiting=None, in_flight=None)
    assert decision.desired == 5
    assert decision.held
    assert decision.reason == "hold: probe failed (1 in a row)"


def test_half_an_observation_counts_as_no_observation() -> None:
    replay = Replay(make_policy(behavior=fast_behavior()), replicas=5)
    assert replay.poll(0, waiting=0, in_flight=None).desired == 5
    assert replay.poll(1, waiting=None, in_flight=0).desired == 5
    assert replay.state.consecutive_failures == 2


def test_failures_in_a_row_lead_to_the_fallback_replicas() -> None:
    replay = Replay(make_policy(behavior=fast_behavior(), fallback_replicas=2), replicas=5)
    first = replay.poll(0, waiting=None, in_flight=None)
    second = replay.poll(2, waiting=None, in_flight=None)
    assert (first.reason, second.reason) == (
        "hold: probe failed (1/3)",
        "hold: probe failed (2/3)",
    )
    third = replay.poll(4, waiting=None, in_flight=None)
    assert third.desired == 2
    assert third.reason == "fallback: 3 probe failures, 5->2"
    fourth = replay.poll(6, waiting=None, in_flight=None)
    assert fourth.desired == 2
    assert fourth.reason == "fallback: 4 probe failures, keeping 2"


def test_a_fallback_is_kept_within_bounds() -> None:
    policy = make_policy(fallback_replicas=50, max_replicas=8, failures_before_fallback=1)
    replay = Replay(policy, replicas=3)
    decision = replay.poll(0, waiting=None, in_flight=None)
    assert decision.desired == 8
    assert decision.limited


def test_one_good_reading_resets_the_failure_count() -> None:
    replay = Replay(make_policy(behavior=fast_behavior(), fallback_replicas=1), replicas=4)
    replay.poll(0, waiting=None, in_flight=None)
    replay.poll(2, waiting=None, in_flight=None)
    replay.poll(4, waiting=40)
    assert replay.state.consecutive_failures == 0
    assert replay.poll(6, waiting=None, in_flight=None).reason == "hold: probe failed (1/3)"


def test_good_data_after_a_fallback_scales_normally_again() -> None:
    policy = make_policy(behavior=fast_behavior(), fallback_replicas=1, failures_before_fallback=1)
    replay = Replay(policy, replicas=4)
    assert replay.poll(0, waiting=None, in_flight=None).desired == 1
    assert replay.poll(2, waiting=70).desired == 7


def test_time_without_data_does_not_count_as_idle() -> None:
    replay = Replay(make_policy(behavior=fast_behavior(), scale_to_zero_after_s=300), replicas=1)
    replay.poll(0, waiting=0)
    replay.poll(250, waiting=None, in_flight=None)
    assert replay.poll(320, waiting=0).desired == 1
    assert replay.poll(550, waiting=0).desired == 0


def test_without_data_the_bounds_still_hold() -> None:
    replay = Replay(make_policy(max_replicas=4), replicas=6)
    decision = replay.poll(0, waiting=None, in_flight=None)
    assert decision.desired == 4
    assert decision.limited


def test_without_data_the_stabilization_memory_is_left_alone() -> None:
    replay = Replay(make_policy(), replicas=6)
    replay.poll(0, waiting=60)
    before = replay.state.recommendations
    replay.poll(2, waiting=None, in_flight=None)
    assert replay.state.recommendations == before
