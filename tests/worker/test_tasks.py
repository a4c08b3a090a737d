"""The migrated task: bad commands are refused before anything runs."""

from __future__ import annotations

import pytest

from taskiq_fleet_worker.runtime import run_agent_task
from taskiq_fleet_worker.tasks import run_command_task


async def test_run_agent_task_invalid_command_raises() -> None:
    command = {"command": "unknown", "session_id": "00000000-0000-0000-0000-000000000001"}

    with pytest.raises(ValueError, match="invalid command type"):
        await run_agent_task(command)


async def test_a_malformed_session_id_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="field 'session_id'"):
        await run_agent_task({"command": "run", "session_id": "not-a-uuid"})


def test_run_command_task_keeps_its_celery_era_name() -> None:
    assert run_command_task.task_name == "tasks.agent.run_command"
