"""How producers (an API, the CLI) hand a command to the agent workers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskiq import AsyncTaskiqDecoratedTask


class TaskiqQueueClient:
    """Sends agent commands as ``run_command_task`` messages; the broker must be started.

    ``task`` is the decorated task to send through; by default the worker's own
    ``run_command_task``. Tests pass one registered on an in-memory broker.
    """

    def __init__(self, *, task: AsyncTaskiqDecoratedTask[Any, Any] | None = None) -> None:
        if task is None:
            from taskiq_fleet_worker.tasks import run_command_task  # noqa: PLC0415 - app on demand

            task = run_command_task
        self.task = task

    async def enqueue(self, *, command: Mapping[str, Any], dedup_key: str | None) -> str:
        """Send ``command``; a ``dedup_key`` makes every copy after the first a no-op."""
        payload = dict(command)
        if dedup_key:
            payload["dedup_key"] = dedup_key
        sent = await self.task.kiq(payload)
        return str(sent.task_id)
