"""The benchmark's tasks on the agent worker's own broker (``taskiq_fleet_worker.app``).

Loaded by ``taskiq worker taskiq_fleet_worker.app:broker taskiq_fleet_worker.tasks
worker_bench_tasks`` next to the agent's ``run_command_task``, so the no-op and I/O
tasks run through exactly the middlewares, result backend and broker the agent does.
"""

from __future__ import annotations

import asyncio

from taskiq_fleet_worker.app import broker

IO_WAIT_S = 0.05


@broker.task(task_name="bench.noop")
async def noop() -> None:
    """Does nothing: what is measured is the framework."""


@broker.task(task_name="bench.io")
async def io_wait() -> None:
    """Waits on I/O for 50 ms, as a call to a model or an API would."""
    await asyncio.sleep(IO_WAIT_S)
