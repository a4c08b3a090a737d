"""In-memory seams for the control loop: a target, a probe and a clock that tests drive."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from taskiq_fleet.control import TargetError
from taskiq_fleet.engine.types import (
    Behavior,
    DirectionRules,
    PolicyKind,
    RatePolicy,
    ScalingPolicy,
)
from taskiq_fleet.probes.types import (
    BrokerKind,
    PoolReading,
    ProbeError,
    QueueReading,
    QueueRef,
)

QUEUE = QueueRef(kind=BrokerKind.LIST, name="default")


def quick_policy(*, min_replicas: int = 1, max_replicas: int = 10) -> ScalingPolicy:
    """No stabilization and no rate limit: the engine goes straight to ceil(work/target)."""
    free = DirectionRules(
        stabilization_window_s=0.0,
        policies=(RatePolicy(kind=PolicyKind.PERCENT, value=1000, period_s=1.0),),
    )
    return ScalingPolicy(
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_per_replica=10.0,
        behavior=Behavior(scale_up=free, scale_down=free),
        scale_to_zero_after_s=0.0,
    )


@dataclass
class FakeClock:
    now_s: float = 1000.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


@dataclass
class FakeProbe:
    waiting: int = 0
    in_flight: int = 0
    error: ProbeError | None = None
    reads: int = 0

    async def read(self, queues: Sequence[QueueRef]) -> PoolReading:
        self.reads += 1
        if self.error is not None:
            raise self.error
        return PoolReading(
            queues=tuple(
                QueueReading(
                    queue=queue,
                    waiting=self.waiting,
                    in_flight=self.in_flight,
                    oldest_age_s=1.5 if self.waiting else None,
                    workers=0,
                    capacity=0,
                )
                for queue in queues
            )
        )


@dataclass
class FakeTarget:
    current: int = 1
    idle: list[str] = field(default_factory=list)
    calls: list[tuple[str, int]] = field(default_factory=list)
    read_error: TargetError | None = None
    scale_error: TargetError | None = None
    mark_error: TargetError | None = None

    async def replicas(self) -> tuple[int, int]:
        if self.read_error is not None:
            raise self.read_error
        return self.current, self.current

    async def set_replicas(self, replicas: int) -> None:
        self.calls.append(("set_replicas", replicas))
        if self.scale_error is not None:
            raise self.scale_error
        self.current = replicas

    async def mark_idle_first(self, *, remove: int) -> Sequence[str]:
        self.calls.append(("mark_idle_first", remove))
        if self.mark_error is not None:
            raise self.mark_error
        return self.idle[:remove]
