"""A simulated worker pool and the two scalers the scaling simulation compares.

Time advances in fixed steps. Tasks arrive on a list queue; worker pods start after a
delay, run up to ``concurrency`` tasks at once, pop the oldest waiting task whenever a
slot is free, and on scale-in stop fetching, finish what they hold and go away (so no
task is ever lost, in either scaler). Both scalers drive the same pool model:

- ``FleetScaler``: taskiq-fleet's engine, polled every ``pollIntervalSeconds``, seeing
  waiting plus in-flight work, with the spec's defaults; on scale-in the idle pods go first.
- ``KedaHpaScaler``: KEDA's Redis list scaler feeding an HPA, with their defaults.
  KEDA polls LLEN every 30 s: it wakes a pool at zero when LLEN > 0 and returns it to
  zero 300 s after LLEN was last above 0. The HPA syncs every 15 s on LLEN averaged per
  pod against the same target, tolerance 0.1, HPA's default behavior, min 1 replica.
  In-flight tasks are invisible to it. On scale-in the ReplicaSet removes the newest
  pods, busy or not.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from taskiq_fleet.engine import decide, rates
from taskiq_fleet.engine.types import (
    Behavior,
    DirectionRules,
    EngineState,
    Observation,
    PolicyKind,
    RatePolicy,
    ScalingPolicy,
    SelectPolicy,
)

#: The HPA's own defaults (autoscaling/v2), written out here so that a change of
#: taskiq-fleet's defaults can never change the baseline it is compared with.
HPA_DEFAULT_BEHAVIOR = Behavior(
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


@dataclass
class Task:
    arrival_s: float
    service_s: float
    start_s: float | None = None
    end_s: float | None = None


@dataclass
class Pod:
    created_s: float
    ready_s: float
    running: list[Task] = field(default_factory=list)
    terminating: bool = False

    def ready(self, now_s: float) -> bool:
        return not self.terminating and now_s >= self.ready_s


class Pool:
    """Pods of one Deployment; ``replicas`` is its spec, pods may lag behind it."""

    def __init__(self, *, concurrency: int, start_delay_s: tuple[float, float], rng: random.Random):
        self.concurrency = concurrency
        self.start_delay_s = start_delay_s
        self.rng = rng
        self.pods: list[Pod] = []
        self.replicas = 0
        self.changes: list[tuple[float, int]] = []

    def scale(self, replicas: int, *, now_s: float, idle_first: bool) -> None:
        if replicas == self.replicas:
            return
        self.changes.append((now_s, replicas))
        self.replicas = replicas
        live = [p for p in self.pods if not p.terminating]
        for _ in range(replicas - len(live)):
            delay_s = self.rng.uniform(*self.start_delay_s)
            self.pods.append(Pod(created_s=now_s, ready_s=now_s + delay_s))
        surplus = len(live) - replicas
        if surplus <= 0:
            return
        # Pods not yet started always go first; then idle ones (fleet) or the newest (HPA).
        if idle_first:
            order = sorted(live, key=lambda p: (p.ready_s <= now_s, len(p.running), -p.created_s))
        else:
            order = sorted(live, key=lambda p: (p.ready_s <= now_s, -p.created_s))
        for pod in order[:surplus]:
            pod.terminating = True

    def step(self, *, now_s: float, queue: list[Task], head: int) -> int:
        """Finish, fetch and retire for one step; returns the new head of ``queue``."""
        for pod in self.pods:
            if pod.running:
                pod.running = [t for t in pod.running if t.end_s is None or t.end_s > now_s]
            while pod.ready(now_s) and len(pod.running) < self.concurrency and head < len(queue):
                task = queue[head]
                head += 1
                task.start_s = now_s
                task.end_s = now_s + task.service_s
                pod.running.append(task)
        self.pods = [p for p in self.pods if not (p.terminating and not p.running)]
        return head

    def in_flight(self) -> int:
        return sum(len(p.running) for p in self.pods)

    def ready_count(self, now_s: float) -> int:
        return sum(1 for p in self.pods if p.ready(now_s))


class FleetScaler:
    """taskiq-fleet's engine as both drivers run it: one decision per poll."""

    name = "taskiq-fleet"
    idle_first = True

    def __init__(self, *, policy: ScalingPolicy, poll_interval_s: float, phase_s: float):
        self.policy = policy
        self.poll_interval_s = poll_interval_s
        self.next_poll_s = phase_s
        self.state = EngineState()

    def tick(self, *, now_s: float, pool: Pool, waiting: int) -> None:
        if now_s < self.next_poll_s:
            return
        self.next_poll_s += self.poll_interval_s
        observation = Observation(
            at_s=now_s,
            waiting=float(waiting),
            in_flight=float(pool.in_flight()),
            current_replicas=pool.replicas,
            ready_replicas=pool.ready_count(now_s),
        )
        decision = decide(policy=self.policy, observation=observation, state=self.state)
        self.state = decision.state
        pool.scale(decision.desired, now_s=now_s, idle_first=True)


class KedaHpaScaler:
    """KEDA's list scaler (activation, cooldown) and an HPA on LLEN, with their defaults."""

    name = "KEDA + HPA"
    idle_first = False
    keda_polling_s = 30.0
    cooldown_s = 300.0
    hpa_sync_s = 15.0
    tolerance = 0.1

    def __init__(
        self, *, target: float, max_replicas: int, keda_phase_s: float, hpa_phase_s: float
    ):
        self.target = target
        self.max_replicas = max_replicas
        self.behavior = HPA_DEFAULT_BEHAVIOR
        self.next_keda_s = keda_phase_s
        self.next_hpa_s = hpa_phase_s
        self.last_active_s: float | None = None
        self.recommendations: tuple[tuple[float, int], ...] = ()
        self.events: tuple[tuple[float, int], ...] = ()

    def tick(self, *, now_s: float, pool: Pool, waiting: int) -> None:
        if now_s >= self.next_keda_s:
            self.next_keda_s += self.keda_polling_s
            self._keda(now_s=now_s, pool=pool, llen=waiting)
        if now_s >= self.next_hpa_s:
            self.next_hpa_s += self.hpa_sync_s
            if pool.replicas > 0:
                self._hpa(now_s=now_s, pool=pool, llen=waiting)

    def _keda(self, *, now_s: float, pool: Pool, llen: int) -> None:
        active = llen > 0
        if active or self.last_active_s is None:
            self.last_active_s = now_s
        if pool.replicas == 0 and active:
            pool.scale(1, now_s=now_s, idle_first=False)
        elif pool.replicas > 0 and not active and now_s - self.last_active_s >= self.cooldown_s:
            pool.scale(0, now_s=now_s, idle_first=False)

    def _hpa(self, *, now_s: float, pool: Pool, llen: int) -> None:
        current = pool.replicas
        ratio = llen / (self.target * current)
        raw = current if abs(ratio - 1) <= self.tolerance else math.ceil(llen / self.target)
        stabilized = rates.stabilize(
            current=current,
            raw=raw,
            at_s=now_s,
            history=self.recommendations,
            behavior=self.behavior,
        )
        keep_s = rates.longest_window_s(self.behavior)
        self.recommendations = (
            *rates.prune(self.recommendations, at_s=now_s, keep_s=keep_s),
            (now_s, raw),
        )
        desired = stabilized
        if desired > current:
            desired = min(
                desired,
                rates.scale_up_limit(
                    current=current, at_s=now_s, events=self.events, rules=self.behavior.scale_up
                ),
            )
        elif desired < current:
            desired = max(
                desired,
                rates.scale_down_limit(
                    current=current, at_s=now_s, events=self.events, rules=self.behavior.scale_down
                ),
            )
        desired = max(1, min(self.max_replicas, desired))
        period_s = rates.longest_period_s(self.behavior)
        self.events = rates.prune(self.events, at_s=now_s, keep_s=period_s)
        if desired != current:
            self.events = (*self.events, (now_s, desired - current))
            pool.scale(desired, now_s=now_s, idle_first=False)
