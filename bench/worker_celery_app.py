"""The baseline: the same three tasks as a Celery app, as the agent runtime ran before.

Broker and result backend are Redis (``BENCH_BROKER_URL``, ``BENCH_RESULT_URL``), with
Celery's defaults otherwise. The agent task runs the very same runtime as the Taskiq
worker, on one event loop per worker process (how async code runs inside Celery).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from celery import Celery, Task

from taskiq_fleet_worker.runtime import AgentRuntime, build_runtime, run_agent_task
from taskiq_fleet_worker.settings import get_settings

IO_WAIT_S = 0.05

app = Celery("bench", broker=os.environ["BENCH_BROKER_URL"], backend=os.environ["BENCH_RESULT_URL"])
app.conf.update(worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)

_loop: asyncio.AbstractEventLoop | None = None
_runtime: AgentRuntime | None = None


@app.task(name="bench.noop")
def noop() -> None:
    """Does nothing: what is measured is the framework."""


@app.task(name="bench.io")
def io_wait() -> None:
    """Blocks for 50 ms: a prefork child cannot do anything else meanwhile."""
    time.sleep(IO_WAIT_S)


@app.task(name="tasks.agent.run_command", bind=True)
def run_command(self: Task, command: dict[str, Any]) -> dict[str, Any]:
    """The agent runtime on this process's own event loop."""
    global _loop, _runtime  # noqa: PLW0603 - one loop and runtime per prefork child
    if _loop is None:
        _loop = asyncio.new_event_loop()
    if _runtime is None:
        _runtime = build_runtime(get_settings())
    return _loop.run_until_complete(
        run_agent_task(command, task_id=str(self.request.id), runtime=_runtime)
    )
