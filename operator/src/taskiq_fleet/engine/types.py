"""The values the engine takes and gives. Frozen, plain, and free of I/O.

Times are seconds on a monotonic clock that the driver supplies (``at_s``); the engine
never reads a clock of its own, which is what lets tests replay hours in microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class SelectPolicy(StrEnum):
    """Which of several scaling policies wins, as in HPA's ``selectPolicy``."""

    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class PolicyKind(StrEnum):
    PODS = "Pods"
    PERCENT = "Percent"


@dataclass(frozen=True, slots=True)
class RatePolicy:
    """At most ``value`` pods (or percent of current) changed per ``period_s``."""

    kind: PolicyKind
    value: int
    period_s: float


@dataclass(frozen=True, slots=True)
class DirectionRules:
    """HPA's rules for one direction: stabilization window, rate policies, selection."""

    stabilization_window_s: float
    policies: tuple[RatePolicy, ...]
    select: SelectPolicy = SelectPolicy.MAX


@dataclass(frozen=True, slots=True)
class Behavior:
    scale_up: DirectionRules
    scale_down: DirectionRules


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    """A pool's scaling settings, already validated and converted to engine units."""

    min_replicas: int
    max_replicas: int
    target_per_replica: float
    behavior: Behavior
    activation_threshold: float = 0.0
    scale_to_zero_after_s: float = 300.0
    fallback_replicas: int | None = None
    failures_before_fallback: int = 3
    tolerance: float = 0.1


@dataclass(frozen=True, slots=True)
class Observation:
    """What one poll saw. ``None`` signals mean the probe failed or data was missing.

    ``waiting`` and ``in_flight`` are already weighted and summed over the pool's queues.
    """

    at_s: float
    waiting: float | None
    in_flight: float | None
    current_replicas: int
    ready_replicas: int
    oldest_age_s: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class EngineState:
    """The engine's own memory between polls; the driver stores it and passes it back."""

    recommendations: tuple[tuple[float, int], ...] = ()
    scale_events: tuple[tuple[float, int], ...] = ()
    last_busy_s: float | None = None
    consecutive_failures: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer for one poll. ``reason`` is short and human-readable."""

    desired: int
    reason: str
    state: EngineState
    limited: bool = False
    held: bool = False
    details: dict[str, float] = field(default_factory=dict)
