"""One pool's poll loop: the shared control loop, fed and reported the Kubernetes way.

The loop runs as the pool's Kopf daemon for as long as the pool exists. Each cycle it
takes the pool's spec (re-read when its generation changes), its Redis URL (from the
Secret, re-read as it rotates), polls once through :class:`PoolController`, and
reports: the status when it changed, an Event and a log line when replicas changed or
something went wrong or came right again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Final

import kopf

from taskiq_fleet.contract import keys
from taskiq_fleet.control import PollOutcome, PoolController, TargetError
from taskiq_fleet.engine.types import EngineState
from taskiq_fleet.handlers import spec_view
from taskiq_fleet.handlers.brokers import BrokerLease
from taskiq_fleet.handlers.reporting import Reporter
from taskiq_fleet.handlers.runtime import Runtime
from taskiq_fleet.handlers.status import Problem
from taskiq_fleet.kube.deployments import ensure_deployment
from taskiq_fleet.kube.errors import KubeError
from taskiq_fleet.kube.pools import write_status
from taskiq_fleet.kube.target import WorkloadRef, WorkloadTarget
from taskiq_fleet.kube.workload import PoolRef
from taskiq_fleet.probes import ProbeError
from taskiq_fleet.spec import InvalidPoolSpecError, PoolSpec
from taskiq_fleet.telemetry.metrics import PoolKey

logger = logging.getLogger("taskiq_fleet.operator")

#: Cycle length while the spec cannot be read at all (it names no interval then).
_IDLE_INTERVAL_S: Final = 5.0
_TRUE: Final = frozenset({"true", "yes", "1", "on"})


class PoolRunner:
    """The poll loop of one TaskiqWorkerPool. ``body`` is Kopf's live view of the pool."""

    def __init__(self, *, runtime: Runtime, body: kopf.Body) -> None:
        meta = body.metadata
        self.pool = PoolRef(namespace=str(meta.namespace), name=str(meta.name), uid=str(meta.uid))
        self.key = PoolKey(namespace=self.pool.namespace, pool=self.pool.name)
        self._runtime = runtime
        self._body = body
        self._spec: PoolSpec | None = None
        self._generation: int | None = None
        self._spec_problem: Problem | None = None
        self._lease: BrokerLease | None = None
        self._controller: PoolController | None = None
        self._target: WorkloadTarget | None = None
        previous: Any = body.status
        self._reporter = Reporter(
            pool=self.pool,
            write=self._write_status,
            post_event=self._post_event,
            previous=dict(previous) if previous else None,
            figures_interval_s=runtime.options.figures_interval_s,
        )

    async def run(self, *, stopped: kopf.DaemonStopped) -> None:
        """Poll on a fixed grid until Kopf stops the loop (the pool goes, or the operator).

        A stop ends the wait between polls at once; a cancellation (a stop that came
        mid-poll) ends the poll too. Either way the loop returns without waiting for
        its clean-up, which runs beside the other pools.
        """
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        try:
            while not stopped:
                interval_s = await self._guarded_cycle(scheduled_at=next_at)
                next_at += interval_s
                now = loop.time()
                next_at = max(next_at, now)
                await stopped.wait(next_at - now)
        finally:
            self._close()

    async def _guarded_cycle(self, *, scheduled_at: float) -> float:
        try:
            return await self.cycle(scheduled_at=scheduled_at)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Retries next cycle: one bad cycle (a bug, an unexpected reply) must not leave
            # the pool unmanaged; replicas stay as they are meanwhile.
            logger.exception("poll cycle failed pool=%s", self.pool)
            self._runtime.metrics.errors.labels(self.key.namespace, self.key.pool, "poll").inc()
            spec = self._spec
            return spec.scaling.poll_interval_seconds if spec else _IDLE_INTERVAL_S

    async def cycle(self, *, scheduled_at: float | None = None) -> float:
        """One cycle; returns the seconds until the next one."""
        problem = self._refresh_spec() or await self._refresh_broker()
        problem = problem or self._runtime.workload_problems.get(self.pool.uid)
        spec = self._spec
        if problem is None and spec is not None:
            problem = await self._ensure_present(spec)
        interval_s = spec.scaling.poll_interval_seconds if spec else _IDLE_INTERVAL_S
        if problem is not None or spec is None:
            self._report(outcome=None, problem=problem)
            return interval_s

        controller = self._ensure_controller(spec)
        loop = asyncio.get_running_loop()
        late_s = 0.0 if scheduled_at is None else max(0.0, loop.time() - scheduled_at)
        outcome = await controller.poll(
            paused=self._paused(), scheduled_at_s=controller.clock() - late_s
        )
        if outcome.probe_error_kind == "permanent":
            # Redis refused what the Secrets hold (say, a password rotated on both sides):
            # read them again now, not only when their refresh period ends.
            spec_view.expire_broker_secrets(self._runtime.secrets, self.pool, spec)
        self._report(outcome=outcome, problem=None)
        return interval_s

    # --- inputs -------------------------------------------------------------------------

    def _refresh_spec(self) -> Problem | None:
        generation = self._body.metadata.get("generation")
        if generation == self._generation and self._spec is not None:
            return None
        if generation == self._generation:
            return self._spec_problem
        self._generation = generation
        try:
            spec = PoolSpec.parse(
                dict(self._body.get("spec") or {}), what=f"TaskiqWorkerPool {self.pool}"
            )
        except InvalidPoolSpecError as exc:
            # Gives up until the spec changes: a person must fix it; the status says what.
            self._spec = None
            self._spec_problem = Problem("InvalidSpec", str(exc))
            return self._spec_problem
        self._spec, self._spec_problem = spec, None
        if self._controller is not None:
            self._controller.reconfigure(policy=spec.to_policy(), queues=spec.queue_refs())
            self._target = self._controller.target = self._make_target(spec)
        return None

    async def _refresh_broker(self) -> Problem | None:
        spec = self._spec
        if spec is None:
            return None
        try:
            address = await spec_view.broker_address(self._runtime.secrets, self.pool, spec)
        except KubeError as exc:
            # Holds: without a URL nothing is probed; the next cycle reads the Secret again.
            return Problem(exc.reason, str(exc))
        if self._lease is not None and self._lease.address == address:
            return None
        try:
            lease = self._runtime.brokers.acquire(address)
        except ProbeError as exc:
            # Gives up until the Secret changes: the URL itself is malformed.
            return Problem("InvalidRedisURL", str(exc))
        if self._lease is not None:
            await self._runtime.brokers.release(self._lease)
        self._lease = lease
        if self._controller is not None:
            self._controller.probe = lease.probe
        return None

    def _paused(self) -> bool:
        value = self._body.metadata.annotations.get(keys.ANNOTATION_PAUSED, "")
        return str(value).strip().lower() in _TRUE

    # --- the control loop ---------------------------------------------------------------

    def _ensure_controller(self, spec: PoolSpec) -> PoolController:
        if self._controller is not None:
            return self._controller
        assert self._lease is not None, "the broker is refreshed before the controller"
        self._target = self._make_target(spec)
        self._controller = PoolController(
            key=self.key,
            policy=spec.to_policy(),
            queues=spec.queue_refs(),
            probe=self._lease.probe,
            target=self._target,
            metrics=self._runtime.metrics,
            state=self._restart_safe_state(),
        )
        return self._controller

    def _restart_safe_state(self) -> EngineState:
        """The engine's memory for a loop that starts on a pool already running.

        The replica count the pool has now counts as just recommended: scale-down waits
        a whole stabilization window and scale-to-zero a whole idle period, exactly as
        if this operator had been watching all along, so a restart changes nothing.
        """
        replicas = (self._reporter.last_status or {}).get("replicas")
        seen = self._runtime.cache.get(namespace=self.pool.namespace, name=self._workload_name())
        if seen is not None:
            replicas = seen.replicas
        if replicas is None:
            return EngineState()
        return EngineState(recommendations=((time.monotonic(), int(replicas)),))

    def _make_target(self, spec: PoolSpec) -> WorkloadTarget:
        ref = spec.scale_target_ref
        workload = WorkloadRef(
            namespace=self.pool.namespace,
            name=self.pool.name if ref is None else ref.name,
            kind="StatefulSet" if ref is not None and ref.kind == "StatefulSet" else "Deployment",
            owned=ref is None,
        )
        queues = [queue.name for queue in spec.broker.queues]
        return WorkloadTarget(
            api=self._runtime.api,
            workload=workload,
            cache=self._runtime.cache,
            in_flight_by_pod=lambda: self._in_flight_by_pod(queues),
        )

    async def _in_flight_by_pod(self, queues: list[str]) -> dict[str, int]:
        if self._lease is None:
            raise TargetError("no Redis connection to read heartbeats from", temporary=True)
        return dict(await self._lease.in_flight_by_pod(queues))

    def _workload_name(self) -> str:
        ref = self._spec.scale_target_ref if self._spec else None
        return self.pool.name if ref is None else ref.name

    async def _ensure_present(self, spec: PoolSpec) -> Problem | None:
        """Create the owned Deployment if the cache has not seen it (a new pool whose
        create handler runs alongside, or a Deployment someone deleted).

        Skipped while the pool is being deleted: its Deployment goes with it.
        """
        if spec.scale_target_ref is not None or self._body.metadata.get("deletionTimestamp"):
            return None
        if self._runtime.cache.get(namespace=self.pool.namespace, name=self.pool.name):
            return None
        try:
            await ensure_deployment(
                self._runtime.api,
                pool=self.pool,
                worker=spec_view.worker_settings(spec),
                initial_replicas=spec.scaling.min_replicas,
                cache=self._runtime.cache,
            )
        except KubeError as exc:
            # Holds: nothing to scale yet; the next cycle tries again.
            return Problem(exc.reason, str(exc))
        return None

    # --- reporting ----------------------------------------------------------------------

    def _report(self, *, outcome: PollOutcome | None, problem: Problem | None) -> None:
        target = self._target
        self._reporter.report(
            outcome=outcome,
            problem=problem,
            generation=self._generation,
            workload=str(target.workload) if target else None,
            paused=self._paused(),
        )

    async def _write_status(self, status: Mapping[str, Any]) -> None:
        await write_status(self._runtime.api, pool=self.pool, status=status)

    def _post_event(self, kind: str, reason: str, message: str) -> None:
        kopf.event(self._body, type=kind, reason=reason, message=message)

    def _close(self) -> None:
        lease, self._lease = self._lease, None
        self._runtime.close_later(self._release(lease), name=f"close pool {self.pool}")
        if self._body.metadata.get("deletionTimestamp"):
            self._runtime.metrics.forget(self.key)
            self._runtime.workload_problems.pop(self.pool.uid, None)

    async def _release(self, lease: BrokerLease | None) -> None:
        await self._reporter.aclose()
        if lease is not None:
            await self._runtime.brokers.release(lease)
