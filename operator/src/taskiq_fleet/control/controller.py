"""One poll of one pool: read the queue, decide, apply, report.

Both drivers (the Kopf handlers and the local supervisor) call :meth:`PoolController.poll`
on their own schedule. The controller keeps the engine's memory between polls, so a
driver holds one controller per pool for as long as the pool lives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from taskiq_fleet.control.target import Probe, Target, TargetError
from taskiq_fleet.engine import decide, missed_poll, not_carried_out
from taskiq_fleet.engine.types import Decision, EngineState, Observation, ScalingPolicy
from taskiq_fleet.probes.types import PoolReading, ProbeError, QueueRef
from taskiq_fleet.telemetry.metrics import FleetMetrics, PoolKey

logger = logging.getLogger("taskiq_fleet.control")

#: Longest reason label on the scale-events counter; reasons are short phrases.
_REASON_LABEL_MAX = 48


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What one poll saw and did, for a driver's status, Events and live views.

    ``decision`` is ``None`` only when the target itself could not be read (then
    nothing was decided). ``probe_error_kind`` is ``"temporary"`` or ``"permanent"``
    when the queue read failed; ``target_error`` names what went wrong on the target.
    Every message here is safe to show: probes and targets never put secrets in them.
    """

    pool: str
    at_s: float
    current: int
    ready: int
    decision: Decision | None
    reading: PoolReading | None = None
    probe_error: str | None = None
    probe_error_kind: str | None = None
    target_error: str | None = None
    target_error_stage: str | None = None
    marked_idle: tuple[str, ...] = ()
    applied: bool = False

    @property
    def broker_reachable(self) -> bool:
        return self.probe_error is None

    @property
    def desired(self) -> int:
        return self.current if self.decision is None else self.decision.desired

    @property
    def changed(self) -> bool:
        """True when this poll changed the replica count."""
        return self.applied and self.desired != self.current


class PoolController:
    """The control loop's body for one pool, shared by every driver.

    ``clock`` is a monotonic clock in seconds (the engine's ``at_s``); tests pass a
    fake one. ``wall_clock`` only stamps the last-poll metric.
    """

    def __init__(
        self,
        *,
        key: PoolKey,
        policy: ScalingPolicy,
        queues: Sequence[QueueRef],
        probe: Probe,
        target: Target,
        metrics: FleetMetrics,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        state: EngineState | None = None,
    ) -> None:
        self.key = key
        self.policy = policy
        self.queues = tuple(queues)
        self.probe = probe
        self.target = target
        self.metrics = metrics
        self.state = state or EngineState()
        self.clock = clock
        self._wall_clock = wall_clock
        self._broker_was_up = True
        #: The last error of each failing target stage: a repeat is counted, not logged.
        self._target_failing: dict[str, str] = {}

    @property
    def name(self) -> str:
        """How the pool is named in log lines: ``namespace/pool``."""
        return f"{self.key.namespace}/{self.key.pool}"

    def reconfigure(self, *, policy: ScalingPolicy, queues: Sequence[QueueRef]) -> None:
        """Take a changed spec; the engine's memory (windows, rate periods) carries over."""
        self.policy = policy
        self.queues = tuple(queues)

    async def poll(
        self, *, paused: bool = False, scheduled_at_s: float | None = None
    ) -> PollOutcome:
        """Run one poll. Never raises for a failed probe or target: the outcome says it.

        ``paused`` lets the engine observe and report without changing replicas.
        ``scheduled_at_s`` (on ``clock``) is when the driver meant to poll; the delay
        to the applied decision is recorded as the decision-lag metric.
        """
        at_s = self.clock()

        # The target first: without the current count there is nothing to decide from.
        try:
            current, ready = await self.target.replicas()
            self._target_ok(stage="read")
        except TargetError as exc:
            # Holds: nothing is changed this poll; the next poll tries again. A poll that
            # saw nothing restarts the idle clock.
            self._count_target_error(stage="read", exc=exc)
            self.state = missed_poll(self.state, at_s=at_s)
            return PollOutcome(
                pool=self.name,
                at_s=at_s,
                current=0,
                ready=0,
                decision=None,
                target_error=str(exc),
                target_error_stage="read",
            )

        reading, probe_error, probe_error_kind = await self._read_queues()
        observation = Observation(
            at_s=at_s,
            waiting=None if reading is None else reading.waiting,
            in_flight=None if reading is None else reading.in_flight,
            current_replicas=current,
            ready_replicas=ready,
            oldest_age_s=None if reading is None else reading.oldest_age_s,
            error=probe_error,
        )
        decision = decide(
            policy=self.policy, observation=observation, state=self.state, paused=paused
        )
        outcome = PollOutcome(
            pool=self.name,
            at_s=at_s,
            current=current,
            ready=ready,
            decision=decision,
            reading=reading,
            probe_error=probe_error,
            probe_error_kind=probe_error_kind,
        )
        logger.debug(
            "poll pool=%s waiting=%s in_flight=%s oldest_age_s=%s current=%d ready=%d "
            "desired=%d reason=%s",
            self.name,
            observation.waiting,
            observation.in_flight,
            observation.oldest_age_s,
            current,
            ready,
            decision.desired,
            decision.reason,
        )

        outcome = await self._apply(outcome=outcome, decision=decision)
        self._report(outcome=outcome, scheduled_at_s=scheduled_at_s)
        return outcome

    async def _read_queues(self) -> tuple[PoolReading | None, str | None, str | None]:
        started = time.perf_counter()
        try:
            reading = await self.probe.read(self.queues)
        except ProbeError as exc:
            # Holds: the engine gets no data and never scales in on missing data.
            kind = "temporary" if exc.temporary else "permanent"
            self.metrics.probe_errors.labels(self.key.namespace, self.key.pool, kind).inc()
            if self._broker_was_up:
                logger.warning("probe failed pool=%s kind=%s error=%s", self.name, kind, exc)
            self._broker_was_up = False
            return None, str(exc), kind
        self.metrics.probe_duration.observe(time.perf_counter() - started)
        if not self._broker_was_up:
            logger.info("probe recovered pool=%s", self.name)
        self._broker_was_up = True
        return reading, None, None

    async def _apply(self, *, outcome: PollOutcome, decision: Decision) -> PollOutcome:
        current, desired = outcome.current, decision.desired
        if desired == current:
            self.state = decision.state
            return replace(outcome, applied=True)

        # Scale-in: let the target choose idle workers before it removes any.
        marked: tuple[str, ...] = ()
        if desired < current:
            try:
                marked = tuple(await self.target.mark_idle_first(remove=current - desired))
                self._target_ok(stage="mark_idle")
            except TargetError as exc:
                # Goes on with the scale-in: workers drain what they hold on the way out,
                # so choosing busy ones costs time, never tasks.
                self._count_target_error(stage="mark_idle", exc=exc)

        try:
            await self.target.set_replicas(desired)
        except TargetError as exc:
            # Holds: the engine's windows and periods stay as they were, so the next poll
            # decides afresh; what it saw of the work is kept.
            self._count_target_error(stage="scale", exc=exc)
            self.state = not_carried_out(self.state, decision=decision)
            return replace(
                outcome,
                marked_idle=marked,
                target_error=str(exc),
                target_error_stage="scale",
            )

        self._target_ok(stage="scale")
        self.state = decision.state
        direction = "up" if desired > current else "down"
        self.metrics.scale_events.labels(
            self.key.namespace, self.key.pool, direction, reason_label(decision.reason)
        ).inc()
        logger.info(
            "scale pool=%s from=%d to=%d reason=%s", self.name, current, desired, decision.reason
        )
        return replace(outcome, marked_idle=marked, applied=True)

    def _report(self, *, outcome: PollOutcome, scheduled_at_s: float | None) -> None:
        ns, pool = self.key.namespace, self.key.pool
        m = self.metrics
        reading = outcome.reading
        m.broker_up.labels(ns, pool).set(1 if reading is not None else 0)
        if reading is not None:
            for queue in reading.queues:
                m.queue_waiting.labels(ns, pool, queue.queue.name).set(queue.waiting)
            m.waiting.labels(ns, pool).set(reading.waiting)
            m.in_flight.labels(ns, pool).set(reading.in_flight)
            age = reading.oldest_age_s
            m.oldest_age.labels(ns, pool).set(0.0 if age is None else age)
        replicas = {
            "desired": outcome.desired,
            "current": outcome.desired if outcome.changed else outcome.current,
            "ready": outcome.ready,
            "min": self.policy.min_replicas,
            "max": self.policy.max_replicas,
        }
        for kind, value in replicas.items():
            m.replicas.labels(ns, pool, kind).set(value)
        m.last_poll.labels(ns, pool).set(self._wall_clock())
        if scheduled_at_s is not None:
            m.decision_lag.observe(max(0.0, self.clock() - scheduled_at_s))

    def _count_target_error(self, *, stage: str, exc: TargetError) -> None:
        # Every failure is counted; a line is logged when a stage starts failing or
        # fails differently, so an outage of an hour is not thousands of lines.
        self.metrics.errors.labels(self.key.namespace, self.key.pool, stage).inc()
        said = str(exc)
        if self._target_failing.get(stage) == said:
            return
        self._target_failing[stage] = said
        kind = "temporary" if exc.temporary else "permanent"
        logger.warning(
            "target error pool=%s stage=%s kind=%s error=%s", self.name, stage, kind, exc
        )

    def _target_ok(self, *, stage: str) -> None:
        if self._target_failing.pop(stage, None) is not None:
            logger.info("target recovered pool=%s stage=%s", self.name, stage)


def reason_label(reason: str) -> str:
    """A bounded metric label from a decision's reason: its leading phrase, no figures.

    Reasons may carry numbers ("scale up: work 42 > 3 x 10"); a label must not, or
    every distinct figure would make a new time series.
    """
    head = reason
    for stop in (":", "(", "=", ";", ","):
        head = head.split(stop, 1)[0]
    words = [word for word in head.split() if not any(ch.isdigit() for ch in word)]
    label = "_".join(words).lower()[:_REASON_LABEL_MAX]
    return label or "other"
