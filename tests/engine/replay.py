"""A fake signal source for the engine: feed polls, apply every decision, look back."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from taskiq_fleet.engine import decide, default_behavior
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


def make_policy(**overrides: Any) -> ScalingPolicy:
    """A pool of up to 20 replicas carrying 10 tasks each, with the default behavior."""
    base = ScalingPolicy(
        min_replicas=0, max_replicas=20, target_per_replica=10.0, behavior=default_behavior()
    )
    return replace(base, **overrides)


def hpa_behavior() -> Behavior:
    """The HPA's own defaults, as a user who copies an HPA's behavior would set them."""
    return Behavior(
        scale_up=rules(("Pods", 4, 15.0), ("Percent", 100, 15.0)),
        scale_down=rules(("Percent", 100, 15.0), window_s=300.0),
    )


def fast_behavior(*, down_window_s: float = 0.0, up_window_s: float = 0.0) -> Behavior:
    """No rate limits worth the name, so a test sees one rule at a time."""
    unlimited = (RatePolicy(kind=PolicyKind.PERCENT, value=10_000, period_s=1.0),)
    return Behavior(
        scale_up=DirectionRules(stabilization_window_s=up_window_s, policies=unlimited),
        scale_down=DirectionRules(stabilization_window_s=down_window_s, policies=unlimited),
    )


def rules(
    *policies: tuple[str, int, float],
    window_s: float = 0.0,
    select: SelectPolicy = SelectPolicy.MAX,
) -> DirectionRules:
    return DirectionRules(
        stabilization_window_s=window_s,
        policies=tuple(
            RatePolicy(kind=PolicyKind(kind), value=value, period_s=period_s)
            for kind, value, period_s in policies
        ),
        select=select,
    )


class Replay:
    """Drives the engine like a control loop that always applies the decision."""

    def __init__(self, policy: ScalingPolicy, *, replicas: int = 0) -> None:
        self.policy = policy
        self.replicas = replicas
        self.state = EngineState()
        self.decisions: list[Decision] = []

    def poll(
        self,
        at_s: float,
        *,
        waiting: float | None,
        in_flight: float | None = 0.0,
        paused: bool = False,
    ) -> Decision:
        observation = Observation(
            at_s=at_s,
            waiting=waiting,
            in_flight=in_flight,
            current_replicas=self.replicas,
            ready_replicas=self.replicas,
        )
        decision = decide(
            policy=self.policy, observation=observation, state=self.state, paused=paused
        )
        self.state = decision.state
        self.replicas = decision.desired
        self.decisions.append(decision)
        return decision

    def hold_load(
        self, *, start_s: float, end_s: float, every_s: float, waiting: float, in_flight: float = 0
    ) -> list[int]:
        """Poll with the same load from ``start_s`` to ``end_s``; the replica counts seen."""
        seen = []
        at_s = start_s
        while at_s <= end_s:
            seen.append(self.poll(at_s, waiting=waiting, in_flight=in_flight).desired)
            at_s += every_s
        return seen
