"""One local worker process: start it, forward its output, drain it, kill it.

Each worker runs in a session of its own, so a Ctrl-C at the terminal reaches only
the supervisor, which then drains the workers itself, in order. SIGTERM goes to the
worker's main process (a ``taskiq worker`` parent passes it on to its children);
SIGKILL, the last resort, goes to the whole process group so no child is left behind.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from enum import StrEnum

output_logger = logging.getLogger("taskiq_fleet.worker")

#: Lines of a worker's output kept to explain why it exited.
TAIL_LINES = 15


class WorkerState(StrEnum):
    RUNNING = "running"
    DRAINING = "draining"
    EXITED = "exited"


class WorkerProcess:
    """A worker command running as one child process group of the supervisor."""

    def __init__(self, *, name: str, process: asyncio.subprocess.Process, started_s: float) -> None:
        self.name = name
        self.process = process
        self.started_s = started_s
        self.state = WorkerState.RUNNING
        self.drain_deadline_s: float | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        *,
        name: str,
        command: Sequence[str],
        env: Mapping[str, str],
        started_s: float,
    ) -> WorkerProcess:
        """Start ``command``; raises ``OSError`` when it cannot be executed at all."""
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )
        worker = cls(name=name, process=process, started_s=started_s)
        worker._reader = asyncio.create_task(worker._forward_output(), name=f"{name}-output")
        return worker

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def uptime_s(self, now_s: float) -> float:
        return now_s - self.started_s

    def drain(self, *, deadline_s: float) -> None:
        """Ask the worker to finish what it holds and exit (SIGTERM), by ``deadline_s``."""
        if self.state is not WorkerState.RUNNING:
            return
        self.state = WorkerState.DRAINING
        self.drain_deadline_s = deadline_s
        with contextlib.suppress(ProcessLookupError):
            # Already gone: the reaper sees its exit code on the next pass.
            os.kill(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the worker's whole process group: the drain ran out of time."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            # Gone already (or the group id was reused by nothing of ours): nothing to kill.
            os.killpg(self.pid, signal.SIGKILL)

    def reap_strays(self) -> None:
        """After the main process exits, end any child it left behind in its group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            # No group left: the usual case, every child exited with its parent.
            os.killpg(self.pid, signal.SIGKILL)

    async def wait(self) -> int:
        code = await self.process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                # The reader ends with the pipe; a cancel here only means shutdown.
                await self._reader
        return code

    async def _forward_output(self) -> None:
        stream = self.process.stdout
        if stream is None:
            return
        while True:
            try:
                raw = await stream.readline()
            except ValueError:
                # A line longer than the stream limit: skip the rest of it, keep reading.
                continue
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip()
            self.tail.append(line)
            output_logger.info("[%s] %s", self.name, line)

    def last_output(self) -> str:
        """The worker's last lines of output, for an error message."""
        return "\n".join(f"    {line}" for line in self.tail) or "    (no output)"
