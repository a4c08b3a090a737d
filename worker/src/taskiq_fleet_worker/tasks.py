"""The worker's tasks. ``run_command_task`` is what producers send (``.kiq``)."""

from __future__ import annotations

from typing import Any

from taskiq import Context, TaskiqDepends

from taskiq_fleet.contract import keys
from taskiq_fleet_worker.app import broker
from taskiq_fleet_worker.runtime import run_agent_task
from taskiq_fleet_worker.settings import get_settings

#: The name producers and workers agree on; it outlives renames of this module.
RUN_COMMAND_TASK_NAME = "tasks.agent.run_command"


@broker.task(task_name=RUN_COMMAND_TASK_NAME, timeout=get_settings().taskiq.task_timeout_s)
async def run_command_task(
    command: dict[str, Any],
    context: Context = TaskiqDepends(),  # noqa: B008 - Taskiq's dependency marker
) -> dict[str, Any]:
    """Run one agent command (``run`` or ``cancel``); see ``taskiq_fleet_worker.commands``."""
    message = context.message
    return await run_agent_task(
        command,
        task_id=message.task_id,
        enqueued_ms=_enqueued_ms(message.labels.get(keys.LABEL_ENQUEUED_MS)),
        labels=message.labels,
    )


def _enqueued_ms(label: object) -> int | None:
    """The producer's enqueue stamp; ``None`` when sent without the fleet middleware
    (the run goes ahead; only its wait time stays unknown)."""
    if isinstance(label, int):
        return label
    if isinstance(label, str) and label.isdigit():
        return int(label)
    return None
