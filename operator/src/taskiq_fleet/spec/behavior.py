"""HPA's ``behavior`` block, in Kubernetes' own shape, with defaults tuned for a queue."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from taskiq_fleet.engine import default_behavior
from taskiq_fleet.engine.types import (
    Behavior,
    DirectionRules,
    PolicyKind,
    RatePolicy,
    SelectPolicy,
)
from taskiq_fleet.spec.base import SpecModel


class ScalingPolicySpec(SpecModel):
    """One rate limit: at most ``value`` pods, or percent of the current count, per period."""

    type: Literal["Pods", "Percent"] = Field(
        description="Pods: a number of replicas. Percent: a percentage of the replicas at the "
        "start of the period.",
    )
    value: int = Field(gt=0, description="How many pods, or what percentage, may change.")
    period_seconds: int = Field(
        gt=0,
        le=1800,
        description="The window, in seconds, over which the change is counted (1 to 1800).",
    )

    def to_rate(self) -> RatePolicy:
        return RatePolicy(
            kind=PolicyKind(self.type), value=self.value, period_s=float(self.period_seconds)
        )


class ScalingRulesSpec(SpecModel):
    """How fast one direction may move. Fields left out take the pool's default for it."""

    stabilization_window_seconds: Annotated[int, Field(ge=0, le=3600)] | None = Field(
        default=None,
        description="Seconds of past recommendations to consider: scaling up uses the lowest "
        "of them, scaling down the highest, so short spikes and dips are ignored. Default: "
        "0 for scaleUp, 30 for scaleDown (the HPA's is 300).",
    )
    select_policy: Literal["Max", "Min", "Disabled"] | None = Field(
        default=None,
        description="Which policy wins when several apply: Max allows the largest change, Min "
        "the smallest, Disabled forbids scaling in this direction. Default: Max.",
    )
    policies: list[ScalingPolicySpec] | None = Field(
        default=None,
        min_length=1,
        description="Rate limits for this direction. Default for scaleUp: 1000 pods per 15 s, "
        "so only maxReplicas bounds a step (the HPA's is 4 pods or 100%, whichever is more); "
        "for scaleDown: 100% per 15 s.",
    )

    def to_rules(self, defaults: DirectionRules) -> DirectionRules:
        window_s = self.stabilization_window_seconds
        select = self.select_policy
        return DirectionRules(
            stabilization_window_s=(
                defaults.stabilization_window_s if window_s is None else float(window_s)
            ),
            policies=(
                defaults.policies
                if self.policies is None
                else tuple(p.to_rate() for p in self.policies)
            ),
            select=defaults.select if select is None else SelectPolicy(select),
        )


class BehaviorSpec(SpecModel):
    """Scale-up and scale-down rules, exactly as in a HorizontalPodAutoscaler."""

    scale_up: ScalingRulesSpec | None = Field(
        default=None, description="Rules for adding replicas. Default: at once, to the need."
    )
    scale_down: ScalingRulesSpec | None = Field(
        default=None,
        description="Rules for removing replicas. Default: after 30 s, all the way down.",
    )


def to_behavior(spec: BehaviorSpec | None) -> Behavior:
    """The engine's behavior: the spec's fields over the pool's defaults, field by field."""
    defaults = default_behavior()
    if spec is None:
        return defaults
    up = spec.scale_up or ScalingRulesSpec()
    down = spec.scale_down or ScalingRulesSpec()
    return Behavior(
        scale_up=up.to_rules(defaults.scale_up), scale_down=down.to_rules(defaults.scale_down)
    )
