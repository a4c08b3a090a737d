"""Invariants of the engine over arbitrary policies and arbitrary sequences of polls."""

from __future__ import annotations

import math
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from taskiq_fleet.engine import decide
from taskiq_fleet.engine.types import (
    Behavior,
    Decision,
    DirectionRules,
    EngineState,
    Observation,
    PolicyKind,
    RatePolicy,
    ScalingPolicy,
    SelectPolicy,
)
from tests.engine.replay import Replay

_rate = st.builds(
    RatePolicy,
    kind=st.sampled_from(PolicyKind),
    value=st.integers(1, 200),
    period_s=st.sampled_from([1.0, 1.0, 15.0, 60.0, 300.0]),
)
_rules = st.builds(
    DirectionRules,
    # No window half the time: windows hide oscillation, which these tests must expose.
    stabilization_window_s=st.sampled_from([0.0, 0.0, 0.0, 30.0, 300.0]),
    policies=st.lists(_rate, min_size=1, max_size=3).map(tuple),
    select=st.sampled_from(SelectPolicy),
)


@st.composite
def _policies(draw: st.DrawFn, *, fallback: bool = True) -> ScalingPolicy:
    low = draw(st.integers(0, 5))
    high = draw(st.integers(max(low, 1), 40))
    return ScalingPolicy(
        min_replicas=low,
        max_replicas=high,
        target_per_replica=draw(st.sampled_from([0.5, 1.0, 3.0, 10.0, 25.0])),
        behavior=Behavior(scale_up=draw(_rules), scale_down=draw(_rules)),
        activation_threshold=draw(st.sampled_from([0.0, 1.0, 20.0])),
        scale_to_zero_after_s=draw(st.sampled_from([0.0, 30.0, 300.0])),
        fallback_replicas=draw(st.none() | st.integers(low, high)) if fallback else None,
        failures_before_fallback=draw(st.integers(1, 4)),
        tolerance=draw(st.sampled_from([0.0, 0.0, 0.1, 0.3])),
    )


_count = st.floats(0, 2000, allow_nan=False) | st.integers(0, 50).map(float)
_poll = st.tuples(
    st.floats(0.5, 120, allow_nan=False),  # seconds since the previous poll
    st.none() | _count,  # waiting
    st.none() | _count,  # in flight
    st.integers(0, 60),  # current replicas: the driver may not have applied the last decision
)


Poll = tuple[float, float | None, float | None, int]


def _run(policy: ScalingPolicy, polls: list[Poll]) -> Iterator[tuple[Observation, Decision]]:
    state = EngineState()
    at_s = 0.0
    for gap_s, waiting, in_flight, current in polls:
        at_s += gap_s
        observation = Observation(
            at_s=at_s,
            waiting=waiting,
            in_flight=in_flight,
            current_replicas=current,
            ready_replicas=current,
        )
        decision = decide(policy=policy, observation=observation, state=state)
        yield observation, decision
        state = decision.state


@settings(max_examples=200, deadline=None)
@given(policy=_policies(), polls=st.lists(_poll, min_size=1, max_size=60))
def test_every_decision_stays_within_the_bounds(policy: ScalingPolicy, polls: list[Poll]) -> None:
    for _, decision in _run(policy, polls):
        assert policy.min_replicas <= decision.desired <= policy.max_replicas
        assert decision.reason


@settings(max_examples=200, deadline=None)
@given(policy=_policies(), polls=st.lists(_poll, min_size=1, max_size=60))
def test_scale_in_never_goes_below_what_in_flight_work_needs(
    policy: ScalingPolicy,
    polls: list[Poll],
) -> None:
    for observation, decision in _run(policy, polls):
        if observation.in_flight is None or observation.waiting is None:
            continue
        if decision.desired < observation.current_replicas:
            needed = math.ceil(observation.in_flight / policy.target_per_replica)
            assert decision.desired >= min(needed, policy.max_replicas)


@settings(max_examples=200, deadline=None)
@given(policy=_policies(fallback=False), polls=st.lists(_poll, min_size=1, max_size=60))
def test_missing_data_never_scales_in(policy: ScalingPolicy, polls: list[Poll]) -> None:
    for observation, decision in _run(policy, polls):
        if observation.in_flight is None or observation.waiting is None:
            kept = min(observation.current_replicas, policy.max_replicas)
            assert decision.desired >= kept
            assert decision.held


@settings(max_examples=200, deadline=None)
@given(
    policy=_policies(),
    start=st.integers(0, 40),
    waiting=_count,
    in_flight=_count,
    every_s=st.sampled_from([2.0, 5.0, 15.0, 30.0]),
)
def test_under_constant_load_replicas_settle_and_then_never_change(
    policy: ScalingPolicy, start: int, waiting: float, in_flight: float, every_s: float
) -> None:
    replay = Replay(policy, replicas=start)
    seen = replay.hold_load(
        start_s=0, end_s=1500, every_s=every_s, waiting=waiting, in_flight=in_flight
    )
    changes = [i for i in range(1, len(seen)) if seen[i] != seen[i - 1]]

    # One direction only: under a constant load, any turn back would be an oscillation.
    directions = {seen[i] > seen[i - 1] for i in changes}
    assert len(directions) <= 1, f"replicas went both up and down: {seen}"

    # Steps come no further apart than the slowest brake; after such a quiet stretch, none.
    behavior = policy.behavior
    brakes_s = [
        behavior.scale_up.stabilization_window_s,
        behavior.scale_down.stabilization_window_s,
        policy.scale_to_zero_after_s,
        *(p.period_s for p in (*behavior.scale_up.policies, *behavior.scale_down.policies)),
    ]
    quiet_s = max(brakes_s) + every_s
    for before, after in zip([0, *changes], changes, strict=False):
        assert (after - before) * every_s <= quiet_s, f"moved again after settling: {seen}"


@settings(max_examples=200, deadline=None)
@given(policy=_policies(fallback=False), polls=st.lists(_poll, min_size=1, max_size=60))
def test_scale_in_never_goes_below_the_highest_recommendation_of_the_window(
    policy: ScalingPolicy, polls: list[Poll]
) -> None:
    window_s = policy.behavior.scale_down.stabilization_window_s
    seen: list[tuple[float, float]] = []
    for observation, decision in _run(policy, polls):
        if "recommended" not in decision.details:
            continue
        seen.append((observation.at_s, decision.details["recommended"]))
        if decision.desired < observation.current_replicas:
            highest = max(r for t, r in seen if t > observation.at_s - window_s or t == seen[-1][0])
            assert decision.desired >= min(highest, policy.max_replicas)
