"""The one-machine driver: the shared control loop scaling a group of local processes.

Worker processes on one machine that grow with the queue and shrink when it drains,
with the operator's engine: the same probe, the same decision code, the same metrics;
only the target differs (processes here, a Deployment in a cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from taskiq_fleet.contract import keys
from taskiq_fleet.contract.redis_url import redact
from taskiq_fleet.control import PollOutcome, PoolController, run_polls
from taskiq_fleet.engine.types import ScalingPolicy
from taskiq_fleet.probes import RedisProbe
from taskiq_fleet.probes.types import QueueRef
from taskiq_fleet.processes import GroupSettings, HeartbeatReader, ProcessGroup
from taskiq_fleet.telemetry.metrics import FleetMetrics, PoolKey

logger = logging.getLogger("taskiq_fleet.local")

#: ``namespace`` label of every local pool's metrics.
LOCAL_NAMESPACE = "local"


@dataclass(frozen=True, slots=True)
class LocalPool:
    """Everything the supervisor needs about one pool, validated and in engine units."""

    name: str
    redis_url: str = field(repr=False)
    queues: tuple[QueueRef, ...]
    policy: ScalingPolicy
    command: tuple[str, ...]
    poll_interval_s: float = 2.0
    concurrency: int = 10
    drain_timeout_s: float = 30.0
    ca_file: str | None = None

    @property
    def shown_url(self) -> str:
        return redact(self.redis_url)

    def worker_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` plus the pool's Redis, queue and capacity settings for every worker."""
        first = self.queues[0]
        return {
            **base,
            keys.ENV_REDIS_URL: self.redis_url,
            keys.ENV_DEFAULT_QUEUE: first.name,
            keys.ENV_BROKER_KIND: first.kind.value,
            keys.ENV_CONSUMER_GROUP: first.consumer_group,
            keys.ENV_QUEUE: first.name,
            keys.ENV_CAPACITY: str(self.concurrency),
        }


OutcomeHook = Callable[[PollOutcome], Awaitable[None]]


class SupervisorError(RuntimeError):
    """The supervisor's own loop failed; the workers were drained before this is raised."""


class Supervisor:
    """Runs one pool's workers and its control loop until told to stop.

    ``group_settings`` may override how processes are restarted and drained (tests
    shorten the backoff); the command, environment and drain timeout come from ``pool``.
    """

    def __init__(
        self,
        pool: LocalPool,
        *,
        metrics: FleetMetrics,
        on_outcome: OutcomeHook | None = None,
        min_uptime_s: float = 5.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.pool = pool
        self.metrics = metrics
        self._on_outcome = on_outcome
        self.heartbeats = HeartbeatReader(
            redis_url=pool.redis_url, queues=[q.name for q in pool.queues], ca_file=pool.ca_file
        )
        self.group = ProcessGroup(
            GroupSettings(
                command=pool.command,
                env=pool.worker_env(os.environ if env is None else env),
                name_prefix=pool.name,
                drain_timeout_s=pool.drain_timeout_s,
                min_uptime_s=min_uptime_s,
                backoff_initial_s=backoff_initial_s,
                backoff_max_s=backoff_max_s,
            ),
            heartbeats=self.heartbeats,
        )
        self.probe = RedisProbe(pool.redis_url, ca_file=pool.ca_file)
        self.controller = PoolController(
            key=PoolKey(namespace=LOCAL_NAMESPACE, pool=pool.name),
            policy=pool.policy,
            queues=pool.queues,
            probe=self.probe,
            target=self.group,
            metrics=metrics,
        )
        self.last_outcome: PollOutcome | None = None
        self._broker_down = False

    async def run(self, stop: asyncio.Event) -> None:
        """Start ``minReplicas`` workers, scale them until ``stop``, then drain them all."""
        logger.info(
            "supervising pool=%s redis=%s queues=%s replicas=%d..%d command=%s",
            self.pool.name,
            self.pool.shown_url,
            ",".join(q.name for q in self.pool.queues),
            self.pool.policy.min_replicas,
            self.pool.policy.max_replicas,
            " ".join(self.pool.command),
        )
        await self.group.set_replicas(self.pool.policy.min_replicas)
        inner = asyncio.Event()
        tasks = [
            asyncio.create_task(self.group.run(inner), name="process-group"),
            asyncio.create_task(
                run_polls(
                    self.controller,
                    interval_s=self.pool.poll_interval_s,
                    stop=inner,
                    on_outcome=self._seen,
                ),
                name="control-loop",
            ),
        ]
        stopped = asyncio.create_task(stop.wait(), name="stop")
        try:
            # Either a stop request, or a loop that ended on its own (a bug): both drain.
            await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Stop deciding first, so nothing scales while the workers drain.
            inner.set()
            stopped.cancel()
            failures = [
                f"{task.get_name()}: {result!r}"
                for task, result in zip(
                    tasks, await asyncio.gather(*tasks, return_exceptions=True), strict=True
                )
                if isinstance(result, Exception)
            ]
            logger.info("draining %d worker(s) of pool=%s", len(self.group.workers), self.pool.name)
            await self.group.shutdown()
            await self._close()
        if failures:
            # Gives up after the drain: a broken loop must not pretend to supervise.
            raise SupervisorError("the supervisor stopped on an error: " + "; ".join(failures))

    def force_stop(self) -> None:
        """Kill every worker now instead of waiting for drains (a second Ctrl-C)."""
        logger.warning("killing %d worker(s) without waiting for them to drain",
                       len(self.group.workers))  # fmt: skip
        self.group.kill_all()

    async def _seen(self, outcome: PollOutcome) -> None:
        self.last_outcome = outcome

        # Say once, clearly, that Redis is away and what the supervisor does meanwhile.
        if not outcome.broker_reachable and not self._broker_down:
            logger.error(
                "cannot read the queue: %s. Holding %d worker(s) as they are and retrying "
                "every %gs",
                outcome.probe_error,
                outcome.current,
                self.pool.poll_interval_s,
            )
        elif outcome.broker_reachable and self._broker_down:
            logger.info("Redis at %s answers again; scaling resumes", self.pool.shown_url)
        self._broker_down = not outcome.broker_reachable
        if self._on_outcome is not None:
            await self._on_outcome(outcome)

    async def _close(self) -> None:
        for close in (self.probe.aclose, self.heartbeats.aclose):
            with contextlib.suppress(Exception):
                # Gives up quietly: closing a connection to a gone server is not news.
                await close()
