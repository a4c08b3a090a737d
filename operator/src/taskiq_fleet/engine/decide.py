"""One scaling decision: a pool's policy, what one poll saw and the engine's memory in;
the replica count to run, the reason and the new memory out.

The core is Kubernetes' HPA algorithm, applied to work (waiting plus in-flight tasks)
instead of a per-pod metric. Around it: KEDA-style activation from zero, a scale to
zero that waits for a whole idle period, and a hold (then an optional fallback) when
the probe could not read the queue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from taskiq_fleet.engine import rates
from taskiq_fleet.engine.types import (
    Decision,
    EngineState,
    Observation,
    ScalingPolicy,
    SelectPolicy,
)


def decide(
    *,
    policy: ScalingPolicy,
    observation: Observation,
    state: EngineState,
    paused: bool = False,
) -> Decision:
    """Decide how many replicas the pool should run after this poll. Pure."""
    if paused:
        # Windows and rate periods stay as they were; the idle clock still watches the
        # work, or a pool busy all through a pause would go to zero when it resumes.
        current = observation.current_replicas
        return Decision(
            desired=current,
            reason=f"paused: keeping {current} replicas",
            state=_watch_idle(state, observation=observation),
            held=True,
        )
    if observation.waiting is None or observation.in_flight is None:
        return _without_data(policy=policy, obs=observation, state=state)
    return _with_data(
        policy=policy,
        obs=observation,
        state=state,
        waiting=max(0.0, observation.waiting),
        in_flight=max(0.0, observation.in_flight),
    )


def missed_poll(state: EngineState, *, at_s: float) -> EngineState:
    """The memory after a poll that saw nothing (the workload could not be read).

    The idle clock restarts: a time we could not see is not a time of idleness.
    """
    return replace(state, last_busy_s=at_s)


def not_carried_out(state: EngineState, *, decision: Decision) -> EngineState:
    """The memory after ``decision`` could not be applied: windows and rate periods as
    before it, so the next poll decides afresh; the idle clock as it observed."""
    return replace(
        state,
        last_busy_s=decision.state.last_busy_s,
        consecutive_failures=decision.state.consecutive_failures,
    )


def _watch_idle(state: EngineState, *, observation: Observation) -> EngineState:
    """The idle clock after ``observation``: restarted by work, or by a poll that could
    not see the queue (a time we could not see is not a time of idleness)."""
    waiting, in_flight = observation.waiting, observation.in_flight
    busy = waiting is None or in_flight is None or max(0.0, waiting) + max(0.0, in_flight) > 0
    if busy or state.last_busy_s is None:
        return replace(state, last_busy_s=observation.at_s)
    return state


def _without_data(*, policy: ScalingPolicy, obs: Observation, state: EngineState) -> Decision:
    """Hold the current count; after enough failures in a row, go to the fallback count.

    The idle clock restarts too: a period we could not see is not a period of idleness.
    """
    current = obs.current_replicas
    failures = state.consecutive_failures + 1
    new_state = replace(_watch_idle(state, observation=obs), consecutive_failures=failures)
    fallback = policy.fallback_replicas
    if fallback is not None and failures >= policy.failures_before_fallback:
        desired = _clamp(fallback, policy=policy)
        change = desired - current
        new_state = _record_change(new_state, policy=policy, at_s=obs.at_s, change=change)
        move = f"{current}->{desired}" if change else f"keeping {desired}"
        return Decision(
            desired=desired,
            reason=f"fallback: {failures} probe failures, {move}",
            state=new_state,
            limited=desired != fallback,
            held=False,
        )

    # Bounds still hold without data: they are the user's own word, not a measurement.
    desired = _clamp(current, policy=policy)
    of = f"/{policy.failures_before_fallback}" if fallback is not None else " in a row"
    new_state = _record_change(new_state, policy=policy, at_s=obs.at_s, change=desired - current)
    return Decision(
        desired=desired,
        reason=f"hold: probe failed ({failures}{of})",
        state=new_state,
        limited=desired != current,
        held=True,
    )


@dataclass(frozen=True, slots=True)
class _Work:
    waiting: float
    in_flight: float
    target: float

    @property
    def total(self) -> float:
        return self.waiting + self.in_flight

    @property
    def replicas(self) -> int:
        return math.ceil(self.total / self.target)

    @property
    def in_flight_replicas(self) -> int:
        return math.ceil(self.in_flight / self.target)

    def describe(self) -> str:
        return f"work {_num(self.total)} / target {_num(self.target)}"


def _with_data(
    *,
    policy: ScalingPolicy,
    obs: Observation,
    state: EngineState,
    waiting: float,
    in_flight: float,
) -> Decision:
    current = obs.current_replicas
    work = _Work(waiting=waiting, in_flight=in_flight, target=policy.target_per_replica)
    busy = work.total > 0
    state = replace(_watch_idle(state, observation=obs), consecutive_failures=0)
    idle_s = 0.0 if state.last_busy_s is None else obs.at_s - state.last_busy_s
    details = {
        "work": work.total,
        "waiting": waiting,
        "in_flight": in_flight,
        "idle_s": idle_s,
    }

    # Scale to zero is KEDA's step, outside HPA's brakes: it already waited a whole idle period.
    idle_long_enough = not busy and idle_s >= policy.scale_to_zero_after_s
    if current > 0 and policy.min_replicas == 0 and idle_long_enough:
        new_state = _remember(state, policy=policy, at_s=obs.at_s, raw=0, change=-current)
        return Decision(
            desired=0,
            reason=f"scale to zero: idle for {idle_s:.0f}s",
            state=new_state,
            details=details,
        )

    raw, why = _recommend(policy=policy, current=current, work=work, idle_s=idle_s)
    details["recommended"] = raw
    if raw < current and not state.recommendations:
        # No memory (a new pool, a restarted operator): as the HPA does, the current
        # count is the first recommendation, so a scale-in waits out the whole window.
        state = replace(state, recommendations=((obs.at_s, current),))
    stabilized = rates.stabilize(
        current=current,
        raw=raw,
        at_s=obs.at_s,
        history=state.recommendations,
        behavior=policy.behavior,
    )
    details["stabilized"] = stabilized
    limited_to, brake = _apply_rates(
        policy=policy, obs=obs, state=state, raw=raw, stabilized=stabilized
    )
    desired = _clamp(limited_to, policy=policy)
    if desired != limited_to:
        brake = "maxReplicas" if desired < limited_to else "minReplicas"
        brake = f"capped at {brake} {desired}"
    # Waking from zero, the first replica is the activation's (KEDA's step); only what
    # goes beyond it counts against the scale-up policies, or a Percent policy would be
    # held at one replica for a whole period (a percentage of zero is zero).
    change = desired - current if current > 0 else max(0, desired - 1)
    new_state = _remember(state, policy=policy, at_s=obs.at_s, raw=raw, change=change)
    reason = _explain(
        current=current, desired=desired, raw=raw, stabilized=stabilized, why=why, brake=brake
    )
    return Decision(
        desired=desired,
        reason=reason,
        state=new_state,
        limited=desired != stabilized,
        held=False,
        details=details,
    )


def _recommend(
    *, policy: ScalingPolicy, current: int, work: _Work, idle_s: float
) -> tuple[int, str]:
    """The replica count the work alone asks for, before any brake, and why."""
    if current == 0:
        if work.total > policy.activation_threshold:
            return max(1, work.replicas), f"activated, {work.describe()}"
        threshold = _num(policy.activation_threshold)
        return 0, f"at zero, work {_num(work.total)} not above activation {threshold}"
    if work.total == 0:
        # One replica stays until the whole idle period has passed (or for good with min >= 1).
        if policy.min_replicas == 0:
            wait_s = policy.scale_to_zero_after_s
            return 1, f"idle for {idle_s:.0f}s, scale to zero after {wait_s:.0f}s"
        return 1, "idle"
    ratio = work.total / (current * work.target)
    if abs(ratio - 1) <= policy.tolerance:
        return current, f"within tolerance, {work.describe()}"

    # Never fewer than the in-flight tasks need: those replicas are busy, not spare.
    return max(work.replicas, work.in_flight_replicas, 1), work.describe()


def _apply_rates(
    *, policy: ScalingPolicy, obs: Observation, state: EngineState, raw: int, stabilized: int
) -> tuple[int, str]:
    """``stabilized`` after the brakes of its direction, and the brake that held it."""
    if stabilized > obs.current_replicas:
        return _brake_up(policy=policy, obs=obs, state=state, raw=raw, stabilized=stabilized)
    if stabilized < obs.current_replicas:
        return _brake_down(policy=policy, obs=obs, state=state, raw=raw, stabilized=stabilized)
    return stabilized, ""


def _brake_up(
    *, policy: ScalingPolicy, obs: Observation, state: EngineState, raw: int, stabilized: int
) -> tuple[int, str]:
    current = obs.current_replicas
    rules = policy.behavior.scale_up
    if rules.select is SelectPolicy.DISABLED:
        return current, "scale-up disabled"
    rising_s = rates.rising_wait_s(
        current=current,
        raw=raw,
        at_s=obs.at_s,
        history=state.recommendations,
        rules=rules,
        tolerance=policy.tolerance,
    )
    if rising_s > 0:
        return current, f"work still rising, scale up within {rising_s:.0f}s"
    # Waking from zero, the activation gives the first replica (KEDA's step) and the
    # policies apply from there, as those of an HPA behind KEDA would.
    limit = rates.scale_up_limit(
        current=max(current, 1), at_s=obs.at_s, events=state.scale_events, rules=rules
    )
    if stabilized > limit:
        return limit, "limited by scale-up policy"
    return stabilized, ""


def _brake_down(
    *, policy: ScalingPolicy, obs: Observation, state: EngineState, raw: int, stabilized: int
) -> tuple[int, str]:
    current = obs.current_replicas
    rules = policy.behavior.scale_down
    if rules.select is SelectPolicy.DISABLED:
        return current, "scale-down disabled"
    wait_s = rates.scale_down_wait_s(at_s=obs.at_s, events=state.scale_events, rules=rules)
    if wait_s > 0:
        return current, f"next scale-down step in {wait_s:.0f}s"
    draining_s = rates.draining_wait_s(
        current=current,
        stabilized=stabilized,
        raw=raw,
        at_s=obs.at_s,
        history=state.recommendations,
        rules=rules,
    )
    if draining_s > 0:
        return current, f"work still draining, scale down within {draining_s:.0f}s"
    limit = rates.scale_down_limit(
        current=current, at_s=obs.at_s, events=state.scale_events, rules=rules
    )
    if stabilized < limit:
        return limit, "limited by scale-down policy"
    return stabilized, ""


def _explain(*, current: int, desired: int, raw: int, stabilized: int, why: str, brake: str) -> str:
    if desired == current:
        if brake:
            return f"hold: {brake}; {why}"
        if stabilized != raw:
            window = "scale-down" if raw < current else "scale-up"
            return f"hold: {window} stabilization; {why}"
        return f"hold: {why}"
    direction = "up" if desired > current else "down"
    text = f"scale {direction} {current}->{desired}: {why}"
    if brake:
        text += f"; {brake}"
    elif stabilized != raw:
        text += f"; stabilized from {raw}"
    return text


def _clamp(replicas: int, *, policy: ScalingPolicy) -> int:
    return max(policy.min_replicas, min(policy.max_replicas, replicas))


def _remember(
    state: EngineState, *, policy: ScalingPolicy, at_s: float, raw: int, change: int
) -> EngineState:
    keep_s = rates.remembered_s(policy.behavior)
    history = rates.prune(state.recommendations, at_s=at_s, keep_s=keep_s)
    state = replace(state, recommendations=(*history, (at_s, raw)))
    return _record_change(state, policy=policy, at_s=at_s, change=change)


def _record_change(
    state: EngineState, *, policy: ScalingPolicy, at_s: float, change: int
) -> EngineState:
    keep_s = rates.longest_period_s(policy.behavior)
    events = rates.prune(state.scale_events, at_s=at_s, keep_s=keep_s)
    if change:
        events = (*events, (at_s, change))
    return replace(state, scale_events=events)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
