"""HPA's two brakes on a recommendation: stabilization windows and rate policies.

Both follow the Kubernetes HorizontalPodAutoscaler so that people who tuned an HPA can
carry their ``behavior`` over unchanged. Recommendations and scale events are kept as
``(at_s, value)`` pairs in :class:`~taskiq_fleet.engine.types.EngineState`; a scale event's
value is the signed change of replicas (positive up, negative down).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from taskiq_fleet.engine.types import (
    Behavior,
    DirectionRules,
    PolicyKind,
    RatePolicy,
    SelectPolicy,
)

Stamped = tuple[float, int]


#: A Pods policy this large never binds: maxReplicas is the only bound on a step up.
ANY_STEP_PODS = 1000
#: How often the HPA evaluates: the longest it could have left a rising count unmet.
HPA_SYNC_PERIOD_S = 15.0


def default_behavior() -> Behavior:
    """The behavior of a pool whose spec sets none: HPA's shape, tuned for an exact count.

    Up: no stabilization, and no rate limit short of maxReplicas (1000 pods per 15 s): the
    HPA's max(+4 pods, +100%) per 15 s guards a noisy per-pod metric against overshoot,
    but waiting plus in-flight tasks is a count, and the count says how many pods it needs.
    Down: keep the highest recommendation of the last 30 s, then up to -100% every 15 s.
    The HPA keeps 300 s to ride out a metric averaged over a minute; an exact count only
    needs to bridge the gaps between arrivals, and an idle pod kept longer than a new one
    takes to start costs more than it saves.
    """
    return Behavior(
        scale_up=DirectionRules(
            stabilization_window_s=0.0,
            policies=(RatePolicy(kind=PolicyKind.PODS, value=ANY_STEP_PODS, period_s=15.0),),
            select=SelectPolicy.MAX,
        ),
        scale_down=DirectionRules(
            stabilization_window_s=30.0,
            policies=(RatePolicy(kind=PolicyKind.PERCENT, value=100, period_s=15.0),),
            select=SelectPolicy.MAX,
        ),
    )


def stabilize(
    *,
    current: int,
    raw: int,
    at_s: float,
    history: Sequence[Stamped],
    behavior: Behavior,
) -> int:
    """The recommendation after both stabilization windows.

    Scaling up goes only as high as the *lowest* recommendation within the scale-up
    window; scaling down only as low as the *highest* within the scale-down window. A
    brief dip or spike therefore moves nothing until it has lasted the whole window.
    """
    up_cutoff_s = at_s - behavior.scale_up.stabilization_window_s
    down_cutoff_s = at_s - behavior.scale_down.stabilization_window_s
    up_floor = min([raw, *(r for t, r in history if t > up_cutoff_s)])
    down_ceiling = max([raw, *(r for t, r in history if t > down_cutoff_s)])
    return min(max(current, up_floor), down_ceiling)


def _changes_in_period(
    events: Sequence[Stamped], *, at_s: float, period_s: float
) -> tuple[int, int]:
    cutoff_s = at_s - period_s
    added = sum(d for t, d in events if t > cutoff_s and d > 0)
    removed = sum(-d for t, d in events if t > cutoff_s and d < 0)
    return added, removed


def scale_up_limit(
    *, current: int, at_s: float, events: Sequence[Stamped], rules: DirectionRules
) -> int:
    """The most replicas the scale-up policies allow now.

    Each policy counts from the replica count at the start of its own period (today's
    count minus what was added plus what was removed within the period), so a series of
    small steps cannot add up to more than one policy allows.
    """
    proposals: list[int] = []
    for policy in rules.policies:
        added, removed = _changes_in_period(events, at_s=at_s, period_s=policy.period_s)
        start = current - added + removed
        if policy.kind is PolicyKind.PODS:
            proposals.append(start + policy.value)
        else:
            proposals.append(math.ceil(start * (1 + policy.value / 100)))
    if not proposals:
        return current
    limit = min(proposals) if rules.select is SelectPolicy.MIN else max(proposals)
    return max(limit, current)


def scale_down_limit(
    *, current: int, at_s: float, events: Sequence[Stamped], rules: DirectionRules
) -> int:
    """The fewest replicas the scale-down policies allow now.

    ``Max`` selects the policy allowing the biggest change, which for scale-down is the
    lowest replica count; ``Min`` the smallest change.
    """
    proposals: list[int] = []
    for policy in rules.policies:
        added, removed = _changes_in_period(events, at_s=at_s, period_s=policy.period_s)
        start = current + removed - added
        if policy.kind is PolicyKind.PODS:
            proposals.append(start - policy.value)
        else:
            proposals.append(math.floor(start * (1 - policy.value / 100)))
    if not proposals:
        return current
    limit = max(proposals) if rules.select is SelectPolicy.MIN else min(proposals)
    return min(max(limit, 0), current)


def scale_down_wait_s(*, at_s: float, events: Sequence[Stamped], rules: DirectionRules) -> float:
    """Seconds until the next scale-down step may be taken; 0 when it may be now.

    The HPA evaluates every 15 s, so its scale-down comes in a few large steps as old
    recommendations leave the window. Polled every few seconds, the same rules would
    step down by one or two replicas at every poll. One step per shortest scale-down
    period keeps HPA's shape: as fast overall, in far fewer changes.
    """
    step_s = min((p.period_s for p in rules.policies), default=0.0)
    last_down_s = max((t for t, change in events if change < 0), default=None)
    if last_down_s is None:
        return 0.0
    return max(0.0, last_down_s + step_s - at_s)


def rising_wait_s(
    *,
    current: int,
    raw: int,
    at_s: float,
    history: Sequence[Stamped],
    rules: DirectionRules,
    tolerance: float,
) -> float:
    """Seconds a scale-up still waits for a rising count to settle; 0 when it may go now.

    A burst that arrives across several polls would otherwise be chased in as many steps.
    While the recommendation still grows by more than the tolerance from one poll to the
    next, the step waits, but never longer than the shortest scale-up period (at most
    the HPA's 15 s sync period) after the last poll at which the pool was big enough:
    the HPA could not have acted sooner. A pool at zero is never kept waiting.
    """
    if current == 0 or not history:
        return 0.0
    previous = history[-1][1]
    if raw <= previous * (1 + tolerance):
        return 0.0
    last_sufficed_s = max((t for t, r in history if r <= current), default=None)
    if last_sufficed_s is None:
        return 0.0
    settle_s = min((p.period_s for p in rules.policies), default=0.0)
    settle_s = min(settle_s, HPA_SYNC_PERIOD_S)
    return max(0.0, last_sufficed_s + settle_s - at_s)


def draining_wait_s(
    *,
    current: int,
    stabilized: int,
    raw: int,
    at_s: float,
    history: Sequence[Stamped],
    rules: DirectionRules,
) -> float:
    """Seconds a scale-down still waits for a draining burst to leave the window.

    While a burst drains, its recommendations fall poll by poll; as they leave the
    scale-down window one by one, the window's highest falls in a staircase, one step
    per period. When a still higher recommendation is due to leave within the next
    period, the step waits for it (at most one period after the window first allowed a
    scale-down), and then takes the whole way down at once. It never goes lower than the
    window allows.
    """
    window_s = rules.stabilization_window_s
    step_s = min((p.period_s for p in rules.policies), default=0.0)
    if window_s <= 0 or step_s <= 0:
        return 0.0
    ahead = max([raw, *(r for t, r in history if t > at_s - window_s + step_s)])
    if ahead >= stabilized:
        return 0.0
    last_high_s = max((t for t, r in history if r >= current), default=None)
    if last_high_s is None:
        return 0.0
    return max(0.0, last_high_s + window_s + step_s - at_s)


def remembered_s(behavior: Behavior) -> float:
    """How long recommendations must be remembered: a window, and a period past it."""
    return longest_window_s(behavior) + longest_period_s(behavior)


def longest_window_s(behavior: Behavior) -> float:
    """The longer of the two stabilization windows."""
    return max(behavior.scale_up.stabilization_window_s, behavior.scale_down.stabilization_window_s)


def longest_period_s(behavior: Behavior) -> float:
    """How long scale events must be remembered."""
    periods = [p.period_s for p in (*behavior.scale_up.policies, *behavior.scale_down.policies)]
    return max(periods, default=0.0)


def prune(history: Sequence[Stamped], *, at_s: float, keep_s: float) -> tuple[Stamped, ...]:
    """The entries younger than ``keep_s``; older ones can no longer affect a decision."""
    cutoff_s = at_s - keep_s
    return tuple((t, v) for t, v in history if t > cutoff_s)
