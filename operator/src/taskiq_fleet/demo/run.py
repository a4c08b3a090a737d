"""One demo run: the supervisor, the agent workers, bursts of load, and the record.

Everything here is real: ``taskiq worker`` processes running the agent, commands
sent by the agent's own load generator, a Redis-compatible server. The operator
package never imports the agent: both run as programs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio
import redis.exceptions

from taskiq_fleet.contract import events, keys
from taskiq_fleet.control import PollOutcome
from taskiq_fleet.demo.scenario import Scenario, Wave
from taskiq_fleet.demo.tally import SentCommand, Tally, read_sent, session_ids_in, tally
from taskiq_fleet.demo.timeline import Sample, Timeline
from taskiq_fleet.demo.view import Status, View
from taskiq_fleet.local.supervisor import LocalPool, Supervisor, SupervisorError
from taskiq_fleet.telemetry.metrics import FleetMetrics

logger = logging.getLogger("taskiq_fleet.demo")

#: How often the view and the record are refreshed.
SAMPLE_EVERY_S = 0.5


@dataclass
class DemoResult:
    """What the summary reports; ``problems`` are reasons the run is not a success."""

    tally: Tally
    timeline: Timeline
    final_workers: int
    final_desired: int
    interrupted: bool
    problems: list[str] = field(default_factory=list)


class SessionWatch:
    """Follows every sent command's session stream until it holds a terminal event."""

    def __init__(self, *, client: redis.asyncio.Redis, sent_paths: Sequence[Path]) -> None:
        self._client = client
        self._paths = sent_paths
        self.sent: list[SentCommand] = []
        self.sessions: dict[str, list[events.SessionEvent]] = {}
        self._finished: set[str] = set()

    @property
    def completed(self) -> int:
        return len(self._finished)

    @property
    def all_finished(self) -> bool:
        return len(self._finished) == len({c.session_id for c in self.sent})

    async def refresh(self, *, everything: bool = False) -> None:
        """Re-read the sent files and the streams of sessions not finished yet."""
        self.sent = read_sent(self._paths)
        ids = sorted({c.session_id for c in self.sent})
        pending = ids if everything else [i for i in ids if i not in self._finished]
        if not pending:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for session_id in pending:
                pipe.xrange(keys.session_events_key(session_id))
            replies = await pipe.execute()
        for session_id, entries in zip(pending, replies, strict=True):
            parsed = []
            for entry_id, raw in entries:
                with contextlib.suppress(events.MalformedEventError):
                    # Holds: a foreign entry must not hide the run's own events.
                    parsed.append(events.parse(entry_id, raw))
            self.sessions[session_id] = parsed
            if any(e.type in events.TERMINAL for e in parsed):
                self._finished.add(session_id)


class DemoRun:
    """Runs ``scenario`` against the Redis at ``pool.redis_url`` and records it."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        pool: LocalPool,
        view: View,
        workdir: Path,
        metrics: FleetMetrics,
        agent_program: str,
        env: Mapping[str, str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scenario = scenario
        self.pool = pool
        self.view = view
        self.workdir = workdir
        self.agent_program = agent_program
        self.env = dict(env)
        self.supervisor = Supervisor(pool, metrics=metrics, on_outcome=self._seen, env=env)
        self.timeline = Timeline(bursts_s=[w.at_s for w in scenario.waves])
        self.problems: list[str] = []
        self._clock = clock
        self._start = clock()
        self._phase = "starting"
        self._client = redis.asyncio.Redis.from_url(pool.redis_url)
        self._sent_paths = [workdir / f"sent-{i}.jsonl" for i in range(len(scenario.waves))]
        self.watch = SessionWatch(client=self._client, sent_paths=self._sent_paths)

    def elapsed_s(self) -> float:
        return self._clock() - self._start

    async def run(self, stop: asyncio.Event) -> DemoResult:
        """Until the load is done, every command finished and the pool is back at its
        minimum, or the deadline, or ``stop``; then drain the workers and count."""
        self._start = self._clock()
        supervisor_stop = asyncio.Event()
        supervisor_task = asyncio.create_task(self.supervisor.run(supervisor_stop))
        load_task = asyncio.create_task(self._run_load(stop))
        deadline_s = self.scenario.load_end_s + self.scenario.settle_timeout_s
        self._phase = "load"
        try:
            await self._follow(stop=stop, load_task=load_task, deadline_s=deadline_s)
        finally:
            # Drain: stop sending, then let the supervisor take every worker down cleanly.
            self._phase = "draining"
            final_workers = len(self.supervisor.group.running)
            final_desired = self.supervisor.group.desired
            load_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                # Cancelled on purpose: the load generators are told to stop.
                await load_task
            supervisor_stop.set()
            try:
                await supervisor_task
            except SupervisorError as exc:
                # Goes on to the count: the workers were drained before this was raised.
                self.problems.append(str(exc))
            self._sample()
        queued = await self._final_count()
        result = tally(sent=self.watch.sent, sessions=self.watch.sessions, queued=queued)
        return DemoResult(
            tally=result,
            timeline=self.timeline,
            final_workers=final_workers,
            final_desired=final_desired,
            interrupted=stop.is_set(),
            problems=self.problems,
        )

    async def _final_count(self) -> set[str]:
        """Read every session once more; returns the session ids still in the queue."""
        try:
            await self.watch.refresh(everything=True)
            waiting = await self._client.lrange(self.scenario.queue, 0, -1)
        except (redis.exceptions.RedisError, OSError) as exc:
            # Gives up on the count: say so, rather than call anything lost or safe.
            self.problems.append(f"cannot count the runs: Redis did not answer ({exc})")
            return set()
        else:
            return session_ids_in(waiting)
        finally:
            await self._client.aclose()

    async def _follow(
        self, *, stop: asyncio.Event, load_task: asyncio.Task[None], deadline_s: float
    ) -> None:
        while not stop.is_set():
            await self.watch.refresh()
            self._sample()
            if load_task.done():
                self._phase = "settling"
                group = self.supervisor.group
                at_min = len(group.workers) == self.scenario.min_workers == group.desired
                if self.watch.all_finished and at_min:
                    return
            if self.elapsed_s() > deadline_s:
                self.problems.append(
                    f"the run did not settle within {deadline_s:.0f}s: "
                    f"{self.watch.completed} of {len(self.watch.sent)} commands finished"
                )
                self.view.note(self.problems[-1])
                return
            with contextlib.suppress(TimeoutError):
                # The timeout is the sampling period; a set ``stop`` ends the run early.
                await asyncio.wait_for(stop.wait(), timeout=SAMPLE_EVERY_S)

    def _sample(self) -> None:
        outcome = self.supervisor.last_outcome
        reading = None if outcome is None else outcome.reading
        group = self.supervisor.group
        workers = len(group.running)
        sample = Sample(
            t_s=self.elapsed_s(),
            waiting=None if reading is None else reading.waiting,
            in_flight=None if reading is None else reading.in_flight,
            oldest_age_s=None if reading is None else reading.oldest_age_s,
            workers=len(group.running),
            # Heartbeats outlive a stopped worker by a few seconds: never more than run.
            ready=0 if reading is None else min(workers, sum(q.workers for q in reading.queues)),
            desired=group.desired,
            completed=self.watch.completed,
        )
        self.timeline.add(sample)
        self.view.update(
            Status(
                elapsed_s=sample.t_s,
                phase=self._phase,
                waiting=sample.waiting,
                in_flight=sample.in_flight,
                oldest_age_s=sample.oldest_age_s,
                workers=sample.workers,
                ready=sample.ready,
                desired=sample.desired,
                min_workers=self.scenario.min_workers,
                max_workers=self.scenario.max_workers,
                sent=len(self.watch.sent),
                planned=self.scenario.sent_total,
                completed=sample.completed,
                broker_up=outcome is None or outcome.broker_reachable,
            )
        )

    async def _seen(self, outcome: PollOutcome) -> None:
        if outcome.changed and outcome.decision is not None:
            self.view.note(
                f"{self.elapsed_s():5.1f}s  workers {outcome.current} -> {outcome.desired}: "
                f"{outcome.decision.reason}"
            )

    async def _run_load(self, stop: asyncio.Event) -> None:
        """Start each wave's load generator on time; wait for all of them to finish."""
        waves = [
            asyncio.create_task(self._one_wave(index, wave, stop))
            for index, wave in enumerate(self.scenario.waves)
        ]
        try:
            await asyncio.gather(*waves)
        finally:
            for task in waves:
                task.cancel()
            await asyncio.gather(*waves, return_exceptions=True)

    async def _one_wave(self, index: int, wave: Wave, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            # The timeout is the wave's start time; ``stop`` means it never starts.
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, wave.at_s - self.elapsed_s()))
        if stop.is_set():
            return
        log_path = self.workdir / f"load-{index}.log"
        command = self.scenario.load_command(
            wave, agent=self.agent_program, out=str(self._sent_paths[index])
        )
        self.view.note(f"{self.elapsed_s():5.1f}s  load: {wave.count} commands ({wave.pattern})")
        with log_path.open("wb") as log:
            # A session of its own: a Ctrl-C at the terminal is the demo's to handle.
            process = await asyncio.create_subprocess_exec(
                *command,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
            try:
                code = await process.wait()
            except asyncio.CancelledError:
                # Gives up on this wave: the demo is ending; what was sent is counted.
                # SIGINT, not SIGTERM: the generator unwinds and flushes its --out file.
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGINT)
                await process.wait()
                raise
        if code != 0:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            self.problems.append(
                f"load generator {index + 1} exited with code {code}: " + " | ".join(tail)
            )
            self.view.note(self.problems[-1])
