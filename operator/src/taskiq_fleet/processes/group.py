"""A group of identical local worker processes whose size the control loop sets.

The group is the supervisor's :class:`~taskiq_fleet.control.Target`. It keeps the
number of running workers at ``desired``: it starts missing ones, replaces crashed
ones (with exponential backoff when the command dies at once, never a tight loop),
and on scale-in drains the idlest workers: SIGTERM, a grace period, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from taskiq_fleet.contract import keys
from taskiq_fleet.processes.idle import HeartbeatSource, drain_order, loads_by_worker
from taskiq_fleet.processes.worker import WorkerProcess, WorkerState

logger = logging.getLogger("taskiq_fleet.processes")


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """How the group runs its workers.

    ``min_uptime_s``: a worker that exits sooner than this "exited at once"; such exits
    in a row double the wait before the next start, from ``backoff_initial_s`` up to
    ``backoff_max_s``. ``drain_timeout_s``: how long a worker told to stop may take to
    finish its tasks before it is killed; keep it above the worker's own drain time.
    """

    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    name_prefix: str = "worker"
    drain_timeout_s: float = 30.0
    min_uptime_s: float = 5.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    tick_s: float = 0.2


class ProcessGroup:
    """Local worker processes, resized by ``set_replicas`` and kept alive by ``run``."""

    def __init__(
        self,
        settings: GroupSettings,
        *,
        heartbeats: HeartbeatSource | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.desired = 0
        self.workers: dict[str, WorkerProcess] = {}
        self.started_total = 0
        self.replaced_total = 0
        self.fast_failures = 0
        self.last_error: str | None = None
        self._heartbeats = heartbeats
        self._clock = clock
        self._next_start_s = 0.0
        self._drain_first: list[str] = []
        self._seq = 0
        self._lock = asyncio.Lock()

    # --- the Target protocol -------------------------------------------------------

    async def replicas(self) -> tuple[int, int]:
        return self.desired, len(self.running)

    async def set_replicas(self, replicas: int) -> None:
        self.desired = max(0, replicas)
        await self.reconcile()

    async def mark_idle_first(self, *, remove: int) -> Sequence[str]:
        if self._heartbeats is None:
            return []
        beats = await self._heartbeats.read()
        loads = loads_by_worker(workers={w.name: w.pid for w in self.running}, beats=beats)
        order, idle = drain_order(loads)
        self._drain_first = order
        return idle[:remove]

    # --- running ---------------------------------------------------------------------

    @property
    def running(self) -> list[WorkerProcess]:
        return [w for w in self.workers.values() if w.state is WorkerState.RUNNING]

    @property
    def draining(self) -> list[WorkerProcess]:
        return [w for w in self.workers.values() if w.state is WorkerState.DRAINING]

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the group at ``desired`` until ``stop`` is set (then call ``shutdown``)."""
        while not stop.is_set():
            await self.reconcile()
            with contextlib.suppress(TimeoutError):
                # The timeout is the tick: wake up and look at the processes again.
                await asyncio.wait_for(stop.wait(), timeout=self.settings.tick_s)

    async def reconcile(self) -> None:
        """One pass: reap exits, enforce drain deadlines, start or drain to ``desired``."""
        async with self._lock:
            now = self._clock()
            await self._reap(now=now)
            self._kill_overdue(now=now)
            if any(w.uptime_s(now) >= self.settings.min_uptime_s for w in self.running):
                # A worker that stays up proves the command works: forget past failures.
                self.fast_failures = 0
                self.last_error = None
            await self._start_missing(now=now)
            self._drain_excess(now=now)

    async def shutdown(self, *, grace_s: float | None = None) -> None:
        """Drain every worker, kill what outlives the drain timeout, return when all exited."""
        self.desired = 0
        self._drain_first = []
        grace = self.settings.drain_timeout_s if grace_s is None else grace_s
        deadline = self._clock() + grace
        for worker in self.running:
            worker.drain(deadline_s=deadline)
        # A killed process group is gone within moments; allow a little beyond the grace.
        give_up = deadline + 5.0
        while self.workers and self._clock() < give_up:
            await self.reconcile()
            await asyncio.sleep(self.settings.tick_s / 2)
        if self.workers:
            names = ", ".join(sorted(self.workers))
            logger.error("workers still present after shutdown: %s", names)

    def kill_all(self) -> None:
        """SIGKILL every worker now: the user asked twice to stop."""
        for worker in self.workers.values():
            worker.kill()

    # --- the steps of a pass -----------------------------------------------------------

    async def _reap(self, *, now: float) -> None:
        for worker in [w for w in self.workers.values() if w.returncode is not None]:
            del self.workers[worker.name]
            worker.reap_strays()
            with contextlib.suppress(TimeoutError):
                # Output still held open by a stray is not worth waiting for.
                await asyncio.wait_for(worker.wait(), timeout=1.0)
            code = _describe_exit(worker.returncode)
            uptime = worker.uptime_s(now)
            if worker.state is WorkerState.DRAINING:
                logger.info("worker %s drained and exited (%s) after %.1fs", worker.name,
                            code, uptime)  # fmt: skip
                continue
            worker.state = WorkerState.EXITED
            self.replaced_total += 1
            if uptime < self.settings.min_uptime_s:
                self._note_fast_failure(worker=worker, code=code, uptime_s=uptime, now=now)
            else:
                logger.warning("worker %s exited unexpectedly (%s) after %.0fs; starting a "
                               "replacement", worker.name, code, uptime)  # fmt: skip

    def _note_fast_failure(
        self, *, worker: WorkerProcess, code: str, uptime_s: float, now: float
    ) -> None:
        delay = self._back_off(now=now)
        self.last_error = (
            f"the worker command exited at once: {worker.name} ended ({code}) after "
            f"{uptime_s:.1f}s, {self.fast_failures} time(s) in a row; next start in {delay:.0f}s"
        )
        logger.error("%s; its last output:\n%s", self.last_error, worker.last_output())

    def _back_off(self, *, now: float) -> float:
        self.fast_failures += 1
        exponent = min(self.fast_failures - 1, 16)
        delay: float = min(
            self.settings.backoff_initial_s * float(2**exponent), self.settings.backoff_max_s
        )
        self._next_start_s = now + delay
        return delay

    def _kill_overdue(self, *, now: float) -> None:
        for worker in self.draining:
            if worker.drain_deadline_s is not None and now >= worker.drain_deadline_s:
                logger.warning("worker %s did not drain within %.0fs; killing it", worker.name,
                               self.settings.drain_timeout_s)  # fmt: skip
                worker.drain_deadline_s = None
                worker.kill()

    async def _start_missing(self, *, now: float) -> None:
        missing = self.desired - len(self.running)
        if missing <= 0 or now < self._next_start_s:
            return
        # After failures, one worker at a time tells whether the command works again.
        if self.fast_failures:
            missing = 1
        for _ in range(missing):
            self._seq += 1
            name = f"{self.settings.name_prefix}-{self._seq}"
            env = {**self.settings.env, keys.ENV_POD_NAME: name}
            try:
                worker = await WorkerProcess.start(
                    name=name, command=self.settings.command, env=env, started_s=now
                )
            except OSError as exc:
                # Backs off and retries: the command may be fixed (or installed) meanwhile.
                delay = self._back_off(now=now)
                self.last_error = (
                    f"cannot start the worker command {self.settings.command[0]!r}: "
                    f"{exc.strerror or exc}; next try in {delay:.0f}s"
                )
                logger.error("%s", self.last_error)
                return
            self.workers[name] = worker
            self.started_total += 1
            logger.debug("worker %s started pid=%d", name, worker.pid)

    def _drain_excess(self, *, now: float) -> None:
        running = self.running
        excess = len(running) - self.desired
        if excess <= 0:
            return
        by_name = {w.name: w for w in running}
        preferred = [by_name[name] for name in self._drain_first if name in by_name]
        # Without a preference, the youngest go first: they hold the least warm state.
        rest = sorted(
            (w for w in running if w not in preferred), key=lambda w: w.started_s, reverse=True
        )
        deadline = now + self.settings.drain_timeout_s
        for worker in [*preferred, *rest][:excess]:
            logger.debug("worker %s draining pid=%d", worker.name, worker.pid)
            worker.drain(deadline_s=deadline)
        self._drain_first = []


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        return f"signal {-returncode}"
    return f"exit code {returncode}"
