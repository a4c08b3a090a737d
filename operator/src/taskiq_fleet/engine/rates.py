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


def default_behavior() -> Behavior:
    """HPA's behavior when none is given.

    Up: no stabilization, at most the larger of +4 pods and +100% every 15 s.
    Down: keep the highest recommendation of the last 300 s, then up to -100% every 15 s.
    """
    return Behavior(
        scale_up=DirectionRules(
            stabilization_window_s=0.0,
            policies=(
                RatePolicy(kind=PolicyKind.PODS, value=4, period_s=15.0),
                RatePolicy(kind=PolicyKind.PERCENT, value=100, period_s=15.0),
            ),
            select=SelectPolicy.MAX,
        ),
        scale_down=DirectionRules(
            stabilization_window_s=300.0,
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


def longest_window_s(behavior: Behavior) -> float:
    """How long recommendations must be remembered."""
    return max(behavior.scale_up.stabilization_window_s, behavior.scale_down.stabilization_window_s)


def longest_period_s(behavior: Behavior) -> float:
    """How long scale events must be remembered."""
    periods = [p.period_s for p in (*behavior.scale_up.policies, *behavior.scale_down.policies)]
    return max(periods, default=0.0)


def prune(history: Sequence[Stamped], *, at_s: float, keep_s: float) -> tuple[Stamped, ...]:
    """The entries younger than ``keep_s``; older ones can no longer affect a decision."""
    cutoff_s = at_s - keep_s
    return tuple((t, v) for t, v in history if t > cutoff_s)
