"""The agent runtime: one command in, one idempotent run (or cancel request) out.

A ``run`` claims its dedup key (the command's ``dedup_key``, else the task id), then
calls the agent step once per step. Events are buffered and written with the cancel
check at step boundaries, at most ``flush_interval_s`` apart, so a run of fast steps
costs two script calls (claim, finish) and a run of slow steps reports each step as
it ends. The claim, ``run.started``, the terminal event and the final claim state are
each written by one server-side script: a run is either finished with its event, or
not finished at all (see ``sessions``). When results live on the same Redis, the
finishing script stores the task's result too (see ``results``), and the calls of
runs that end or start together share one script call (see ``batching``).

A ``cancel`` sets the session's cancel flag; the running (or next) run stops at its
next step boundary with ``run.cancelled``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio
import redis.exceptions

from taskiq_fleet.contract import events, keys
from taskiq_fleet_worker.agent import AgentStep, StepInput, load_agent_step
from taskiq_fleet_worker.commands import CancelCommand, RunCommand, parse_command
from taskiq_fleet_worker.connection import connection_options, describe
from taskiq_fleet_worker.logs import session_id_var, task_id_var
from taskiq_fleet_worker.results import ResultTarget, encode_result, mark_stored, result_key
from taskiq_fleet_worker.sessions import Claim, Fields, Outcome, SessionStore, StoredResult
from taskiq_fleet_worker.settings import Settings, get_settings

logger = logging.getLogger("taskiq_fleet_worker.runtime")


class AgentRunError(RuntimeError):
    """The agent step raised; ``run.failed`` is written and the claim released."""


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """How runs behave on this worker."""

    worker: str
    steps: int = 3
    work_ms: int = 100
    #: Lifetime of a run's claim without renewal; a dead worker's run is free after it.
    lease_s: float = 10.0
    #: Longest time buffered events wait; also how often a cancel is looked for.
    flush_interval_s: float = 0.05
    #: How long a redelivered copy waits for a live copy of itself to finish.
    wait_timeout_s: float = 240.0
    #: Set when task results live on the sessions' Redis: a run that ends without an
    #: error then stores its task's result in the step that records its outcome.
    results: ResultTarget | None = None


@dataclass(slots=True)
class _Run:
    """One run in progress: who it is, and its lease."""

    session_id: str
    task_id: str
    dedup_key: str
    owner: str
    steps: int
    work_ms: int
    input: Mapping[str, Any]
    labels: Mapping[str, Any] | None = None
    started_s: float = 0.0
    lease_lost: bool = False
    lease_timer: asyncio.TimerHandle | None = None
    lease_task: asyncio.Task[None] | None = None
    pending: list[Fields] = field(default_factory=list)


class AgentRuntime:
    """Executes commands against one Redis with one agent step."""

    def __init__(self, *, store: SessionStore, step: AgentStep, config: RuntimeConfig) -> None:
        self.store = store
        self.step = step
        self.config = config

    async def handle(
        self,
        command: RunCommand | CancelCommand,
        *,
        task_id: str,
        enqueued_ms: int | None = None,
        labels: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Execute ``command``; ``labels`` (the Taskiq message's) allow storing the result."""
        session_id = str(command.session_id)
        task_id_var.set(task_id)
        session_id_var.set(session_id)
        if isinstance(command, CancelCommand):
            await self.store.request_cancel(session_id=session_id)
            logger.info("cancel requested for session %s", session_id)
            return {"status": "cancel_requested", "session_id": session_id, "task_id": task_id}
        run = _Run(
            session_id=session_id,
            task_id=task_id,
            dedup_key=command.dedup_key or f"task:{task_id}",
            owner=f"{task_id}:{uuid.uuid4().hex[:12]}",
            steps=command.steps or self.config.steps,
            work_ms=self.config.work_ms if command.work_ms is None else command.work_ms,
            input=command.input,
            labels=labels,
            started_s=time.perf_counter(),
        )
        claim = await self._claim(run, enqueued_ms=enqueued_ms)
        if claim.status != "claimed":
            logger.info(
                "dedup key %r already %s by task %s", run.dedup_key, claim.status, claim.holder
            )
            body = self._result(run, "deduplicated", steps=0, holder=claim.holder)
            same_task_done = claim.status == "done" and claim.holder == task_id
            if same_task_done and self.config.results is not None:
                # This very task ran to its end before (a redelivery after the result was
                # stored with its outcome): that result stands, this answer is not stored.
                mark_stored(task_id, body)
            return body

        self._schedule_renewal(run)
        try:
            return await self._steps(run, cancel_requested=claim.cancel_requested)
        except asyncio.CancelledError:
            # Gives up on this copy (timeout or hard stop): record it and release the
            # claim in a task of its own, so that a repeated cancel cannot stop the write.
            await asyncio.shield(self._end(run, "failed", error="interrupted: timeout or stop"))
            raise
        except Exception as exc:
            # Gives up: the step's own error is recorded; a retry may run it again.
            await self._end(run, "failed", error=describe(exc))
            raise AgentRunError(f"agent step failed in session {session_id}: {exc}") from exc
        finally:
            self._stop_renewal(run)

    async def _claim(self, run: _Run, *, enqueued_ms: int | None) -> Claim:
        now = _now_ms()
        started = self._event(events.RUN_STARTED, run, now) | {
            events.F_DEDUP_KEY: run.dedup_key,
            events.F_STEPS: str(run.steps),
            events.F_STARTED_MS: str(now),
            events.F_ENQUEUED_MS: "" if enqueued_ms is None else str(enqueued_ms),
        }
        deduplicated = self._event(events.RUN_DEDUPLICATED, run, now) | {
            events.F_DEDUP_KEY: run.dedup_key
        }

        async def claim() -> Claim:
            return await self.store.claim(
                dedup_key=run.dedup_key,
                session_id=run.session_id,
                owner=run.owner,
                task_id=run.task_id,
                lease_ms=int(self.config.lease_s * 1000),
                started=started,
                deduplicated=deduplicated,
            )

        current = await claim()

        # A copy of this very task holds the claim: the message was delivered again
        # while the first copy still runs, or before the dead copy's lease ran out.
        deadline = time.monotonic() + self.config.wait_timeout_s
        while current.status == "redelivered" and time.monotonic() < deadline:
            await asyncio.sleep(min(1.0, self.config.lease_s / 2))
            current = await claim()
        return current

    async def _steps(self, run: _Run, *, cancel_requested: bool) -> dict[str, Any]:
        last_flush_s = time.monotonic()
        steps_run = 0
        for index in range(run.steps):
            if cancel_requested:
                return await self._end(run, "cancelled", steps=steps_run)
            if run.lease_lost:
                logger.warning("run taken over by another worker; stopping this copy")
                return self._result(run, "superseded", steps=steps_run)
            result = await self.step(
                StepInput(
                    session_id=run.session_id,
                    task_id=run.task_id,
                    index=index,
                    steps=run.steps,
                    work_ms=run.work_ms,
                    input=run.input,
                )
            )
            steps_run = index + 1
            run.pending.append(
                self._event(events.STEP, run, _now_ms())
                | {events.F_STEP: str(index), events.F_OUTPUT: json.dumps(dict(result.output))}
            )
            if result.done:
                break

            # Write what we have and look for a cancel, unless we did so a moment ago.
            now_s = time.monotonic()
            if steps_run < run.steps and now_s - last_flush_s >= self.config.flush_interval_s:
                cancel_requested = await self.store.flush(
                    session_id=run.session_id, events=run.pending
                )
                run.pending = []
                last_flush_s = now_s
        return await self._end(run, "completed", steps=steps_run)

    async def _end(
        self, run: _Run, outcome: Outcome, *, steps: int = 0, error: str = ""
    ) -> dict[str, Any]:
        now = _now_ms()
        kind = {
            "completed": events.RUN_COMPLETED,
            "failed": events.RUN_FAILED,
            "cancelled": events.RUN_CANCELLED,
        }[outcome]
        terminal = self._event(kind, run, now) | {events.F_FINISHED_MS: str(now)}
        terminal |= {events.F_ERROR: error} if outcome == "failed" else {events.F_STEPS: str(steps)}
        body = self._result(run, outcome, steps=steps)
        # A failed run raises: its task's result is the error, which the backend writes.
        stored = None if outcome == "failed" else self._stored_result(run, body)
        finished = await self.store.finish(
            dedup_key=run.dedup_key,
            session_id=run.session_id,
            owner=run.owner,
            task_id=run.task_id,
            outcome=outcome,
            events=[*run.pending, terminal],
            consume_cancel=outcome == "cancelled",
            result=stored,
        )
        run.pending = []
        if not finished:
            logger.warning("run taken over by another worker; its outcome stands, not %s", outcome)
            return self._result(run, "superseded", steps=steps)
        if stored is not None:
            mark_stored(run.task_id, body)
        logger.info("run %s after %d of %d steps", outcome, steps, run.steps)
        return body

    def _stored_result(self, run: _Run, body: dict[str, Any]) -> StoredResult | None:
        if self.config.results is None or run.labels is None:
            return None
        value = encode_result(
            body, labels=run.labels, execution_time_s=time.perf_counter() - run.started_s
        )
        return StoredResult(
            key=result_key(run.task_id), value=value, ttl_s=self.config.results.ttl_s
        )

    def _event(self, kind: str, run: _Run, now_ms: int) -> dict[str, str]:
        return {
            events.F_TYPE: kind,
            events.F_TASK_ID: run.task_id,
            events.F_MS: str(now_ms),
            events.F_WORKER: self.config.worker,
        }

    @staticmethod
    def _result(run: _Run, status: str, *, steps: int, holder: str = "") -> dict[str, Any]:
        result: dict[str, Any] = {
            "status": status,
            "session_id": run.session_id,
            "task_id": run.task_id,
            "dedup_key": run.dedup_key,
            "steps": steps,
        }
        if holder:
            result["holder"] = holder
        return result

    # --- the lease ------------------------------------------------------------------
    # Renewal starts only once a run has lasted a third of the lease: most runs end
    # sooner, and a timer costs less than a task.

    def _schedule_renewal(self, run: _Run) -> None:
        loop = asyncio.get_running_loop()
        run.lease_timer = loop.call_later(
            self.config.lease_s / 3,
            lambda: setattr(run, "lease_task", loop.create_task(self._renew_forever(run))),
        )

    @staticmethod
    def _stop_renewal(run: _Run) -> None:
        if run.lease_timer is not None:
            run.lease_timer.cancel()
        if run.lease_task is not None:
            run.lease_task.cancel()

    async def _renew_forever(self, run: _Run) -> None:
        lease_ms = int(self.config.lease_s * 1000)
        while True:
            try:
                if not await self.store.renew(
                    dedup_key=run.dedup_key, owner=run.owner, lease_ms=lease_ms
                ):
                    run.lease_lost = True
                    return
            except redis.exceptions.RedisError as exc:
                # Retries at the next renewal; the run goes on meanwhile.
                logger.warning("claim renewal failed: %s", describe(exc))
            await asyncio.sleep(self.config.lease_s / 3)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- the process's runtime -----------------------------------------------------------

_runtimes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AgentRuntime] = (
    weakref.WeakKeyDictionary()
)


def worker_name() -> str:
    """``<pod>/<pid>``: who ran a step, as written in session events."""
    pod = os.environ.get(keys.ENV_POD_NAME) or socket.gethostname()
    return f"{pod}/{os.getpid()}"


def lease_s_for(settings: Settings) -> float:
    """A quarter of the reclaim time, within 1-30 s: a dead worker's run frees up well
    before its message is reclaimed, and a live worker renews without hurry."""
    return max(1.0, min(30.0, settings.taskiq.reclaim_idle_s / 4))


def build_runtime(settings: Settings, *, client: redis.asyncio.Redis | None = None) -> AgentRuntime:
    """A runtime on ``settings.redis.url`` (or ``client``) with the configured agent step."""
    client = client or redis.asyncio.Redis.from_url(
        settings.redis.url, **connection_options(blocking=False)
    )
    return AgentRuntime(
        store=SessionStore(client),
        step=load_agent_step(settings.agent.step),
        config=RuntimeConfig(
            worker=worker_name(),
            steps=settings.agent.steps,
            work_ms=settings.agent.work_ms,
            lease_s=lease_s_for(settings),
            wait_timeout_s=settings.taskiq.task_timeout_s,
            results=(
                ResultTarget(ttl_s=settings.taskiq.result_ttl_s)
                if settings.taskiq_result_backend_url == settings.redis.url
                else None
            ),
        ),
    )


def default_runtime() -> AgentRuntime:
    """This event loop's runtime, built from the environment on first use."""
    loop = asyncio.get_running_loop()
    runtime = _runtimes.get(loop)
    if runtime is None:
        runtime = build_runtime(get_settings())
        _runtimes[loop] = runtime
    return runtime


async def close_default_runtime() -> None:
    runtime = _runtimes.pop(asyncio.get_running_loop(), None)
    if runtime is not None:
        await runtime.store.client.aclose()


async def run_agent_task(
    command: Mapping[str, Any] | str | bytes,
    *,
    task_id: str | None = None,
    enqueued_ms: int | None = None,
    labels: Mapping[str, Any] | None = None,
    runtime: AgentRuntime | None = None,
) -> dict[str, Any]:
    """Validate and execute one command; raises ``ValueError`` for a command it refuses.

    ``labels`` are the Taskiq message's, given by the task: with them a completed run
    stores the task's result itself (see ``results``).
    """
    parsed = parse_command(command)
    runtime = runtime or default_runtime()
    return await runtime.handle(
        parsed,
        task_id=task_id or f"direct-{uuid.uuid4().hex}",
        enqueued_ms=enqueued_ms,
        labels=labels,
    )
