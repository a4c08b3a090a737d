"""What one pool tells people: its status, its Events and their log lines.

Status writes go out from a task of their own, so an API server that stalls delays
the status, never the pool's next poll. At most one write per pool is in flight; a
newer status replaces one still waiting to go.

The reporter is handed the two ways out, a status write and an Event post, so it runs
the same against the API server and against a test's recorder.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from taskiq_fleet.control import PollOutcome
from taskiq_fleet.handlers.status import Problem, build_status, conditions_for, worth_writing
from taskiq_fleet.kube.errors import KubeError
from taskiq_fleet.kube.workload import PoolRef

logger = logging.getLogger("taskiq_fleet.operator")

#: Seconds a pool's last status write may take once its loop ends (Kopf allows the
#: loop 10 s to stop); a write still waiting then is dropped.
CLOSE_WAIT_S: Final = 5.0

#: Replaces the pool's status; raises :class:`KubeError` when the API refuses it.
StatusWrite = Callable[[Mapping[str, Any]], Awaitable[None]]
#: Posts an Event on the pool: ``(type, reason, message)``; never raises.
EventPost = Callable[[str, str, str], None]


def rfc3339_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Reporter:
    """Status and Events of one pool. ``previous`` is the status found on the pool."""

    def __init__(
        self,
        *,
        pool: PoolRef,
        write: StatusWrite,
        post_event: EventPost,
        previous: Mapping[str, Any] | None,
        figures_interval_s: float,
        close_wait_s: float = CLOSE_WAIT_S,
    ) -> None:
        self._pool = pool
        self._write_status = write
        self._post_event = post_event
        self._figures_interval_s = figures_interval_s
        self._close_wait_s = close_wait_s
        self._written: dict[str, Any] | None = dict(previous) if previous else None
        self._submitted = self._written
        self._submitted_at_s = 0.0
        self._pending: dict[str, Any] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._last_scale_time: str | None = (previous or {}).get("lastScaleTime")
        self._shown_problem: Problem | None = None
        self._shown_broker_error: str | None = None
        self._shown_target_error: str | None = None
        self._write_failure: str | None = None

    @property
    def last_status(self) -> Mapping[str, Any] | None:
        """The newest status written or on its way."""
        return self._submitted

    def report(
        self,
        *,
        outcome: PollOutcome | None,
        problem: Problem | None,
        generation: int | None,
        workload: str | None,
        paused: bool,
    ) -> None:
        now = rfc3339_now()
        if outcome is not None and outcome.changed:
            self._last_scale_time = now
        self._post_events(outcome=outcome, problem=problem)
        status = build_status(
            generation=generation,
            workload=workload,
            outcome=outcome,
            conditions=conditions_for(
                outcome=outcome, problem=problem, paused=paused, workload=workload
            ),
            previous=self._submitted,
            last_scale_time=self._last_scale_time,
            now=now,
        )
        now_s = asyncio.get_running_loop().time()
        if worth_writing(
            status=status,
            written=self._submitted,
            since_write_s=now_s - self._submitted_at_s,
            figures_interval_s=self._figures_interval_s,
        ):
            self._submitted, self._submitted_at_s = status, now_s
            self._pending = status
            if self._writer is None or self._writer.done():
                self._writer = asyncio.create_task(self._write(), name=f"status {self._pool}")

    async def aclose(self) -> None:
        """Give a write in flight ``close_wait_s`` to finish, then drop it."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            await asyncio.wait({writer}, timeout=self._close_wait_s)
        finally:
            # Drops a write still waiting (a no-op on one that ended): the loop is over.
            writer.cancel()

    async def _write(self) -> None:
        while self._pending is not None:
            status, self._pending = self._pending, None
            try:
                await self._write_status(status)
            except Exception as exc:
                # Retries at the next poll, which compares with what was written last.
                self._submitted, self._pending = self._written, None
                self._log_write_failure(exc)
                return
            self._written, self._write_failure = status, None

    def _log_write_failure(self, exc: Exception) -> None:
        """A warning for a new kind of failure (with its traceback when it is no API
        error, so a bug shows); repeats of the same kind at debug."""
        known = isinstance(exc, KubeError)
        kind = exc.reason if isinstance(exc, KubeError) else type(exc).__name__
        level = logging.DEBUG if kind == self._write_failure else logging.WARNING
        self._write_failure = kind
        logger.log(
            level, "status write failed pool=%s error=%s", self._pool, exc, exc_info=not known
        )

    def _post_events(self, *, outcome: PollOutcome | None, problem: Problem | None) -> None:
        """One Event (and log line) when a problem starts or ends, and per replica change."""
        if problem != self._shown_problem:
            if problem is not None:
                logger.warning("pool=%s problem=%s %s", self._pool, problem.reason, problem.message)
                self._event("Warning", problem.reason, problem.message)
            elif self._shown_problem is not None:
                logger.info("pool=%s recovered from %s", self._pool, self._shown_problem.reason)
                self._event("Normal", "Recovered", "scaling again")
            self._shown_problem = problem
        if outcome is None:
            return
        if outcome.changed and outcome.decision is not None:
            reason = "ScaledUp" if outcome.desired > outcome.current else "ScaledDown"
            message = f"{outcome.current} -> {outcome.desired} replicas: {outcome.decision.reason}"
            self._event("Normal", reason, message)
        if outcome.probe_error != self._shown_broker_error:
            if outcome.probe_error is not None:
                self._event("Warning", "BrokerUnreachable", outcome.probe_error)
            else:
                self._event("Normal", "BrokerReachable", "Redis answers")
            self._shown_broker_error = outcome.probe_error
        if outcome.target_error != self._shown_target_error:
            if outcome.target_error is not None:
                reason = "ScaleFailed" if outcome.target_error_stage == "scale" else "TargetError"
                self._event("Warning", reason, outcome.target_error)
            self._shown_target_error = outcome.target_error

    def _event(self, kind: str, reason: str, message: str) -> None:
        self._post_event(kind, reason, message)
