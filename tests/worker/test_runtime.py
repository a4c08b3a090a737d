"""The agent runtime on a real Redis: events, dedup, cancel, failure, and taking over a run."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis.asyncio

from taskiq_fleet.contract import events, keys
from taskiq_fleet_worker.agent import (
    AgentStepError,
    DeterministicAgent,
    StepInput,
    StepResult,
    load_agent_step,
)
from taskiq_fleet_worker.runtime import AgentRunError, AgentRuntime, RuntimeConfig, run_agent_task
from taskiq_fleet_worker.sessions import Retention, SessionStore
from tests.worker.harness import eventually, run_command, session_events

pytestmark = pytest.mark.integration


class FailingAgent:
    """Fails at one step; counts its calls."""

    def __init__(self, *, fail_at: int) -> None:
        self.fail_at = fail_at
        self.calls = 0

    async def __call__(self, step: StepInput) -> StepResult:
        self.calls += 1
        if step.index == self.fail_at:
            raise RuntimeError("the model said no")
        return StepResult(output={"ok": step.index})


class EarlyFinish:
    async def __call__(self, step: StepInput) -> StepResult:
        return StepResult(output={"answer": 42}, done=step.index == 1)


def _runtime(client: redis.asyncio.Redis, step: Any = None, **config: Any) -> AgentRuntime:
    return AgentRuntime(
        store=SessionStore(client, retention=Retention(), retry_window_s=5),
        step=step or DeterministicAgent(),
        config=RuntimeConfig(worker="test/1", **({"work_ms": 0} | config)),
    )


@pytest.fixture
def runtime(redis_client: redis.asyncio.Redis) -> AgentRuntime:
    return _runtime(redis_client)


async def test_a_run_writes_started_each_step_and_completed_in_order(
    runtime: AgentRuntime, redis_client: redis.asyncio.Redis
) -> None:
    command = run_command(steps=4, input={"q": "hi"})

    result = await run_agent_task(command, task_id="t-1", enqueued_ms=123, runtime=runtime)

    assert result == {
        "status": "completed",
        "session_id": command["session_id"],
        "task_id": "t-1",
        "dedup_key": "task:t-1",
        "steps": 4,
    }
    history = await events.read_session(redis_client, session_id=command["session_id"])
    assert [e.type for e in history] == ["run.started"] + ["step"] * 4 + ["run.completed"]
    assert history[0].int_field(events.F_ENQUEUED_MS) == 123
    assert [json.loads(e.fields["output"])["step"] for e in history[1:5]] == [0, 1, 2, 3]
    assert await redis_client.ttl(keys.session_events_key(command["session_id"])) > 0


async def test_the_default_agent_is_deterministic(runtime: AgentRuntime) -> None:
    step = StepInput(session_id="s", task_id="t", index=2, steps=3, work_ms=0, input={"a": 1})

    assert await DeterministicAgent()(step) == await DeterministicAgent()(step)


async def test_a_dedup_key_seen_before_does_not_run_again(
    runtime: AgentRuntime, redis_client: redis.asyncio.Redis
) -> None:
    command = run_command(dedup_key="pay-7")

    first = await run_agent_task(command, task_id="a", runtime=runtime)
    second = await run_agent_task(command, task_id="b", runtime=runtime)

    assert first["status"] == "completed"
    assert second["status"] == "deduplicated"
    assert second["holder"] == "a"
    history = await session_events(redis_client, command["session_id"])
    assert history.count("run.started") == 1
    assert history[-1] == "run.deduplicated"


async def test_concurrent_copies_of_one_command_run_once(
    runtime: AgentRuntime, redis_client: redis.asyncio.Redis
) -> None:
    command = run_command(dedup_key="same", work_ms=200)

    results = await asyncio.gather(
        *(run_agent_task(command, task_id=f"copy-{i}", runtime=runtime) for i in range(5))
    )

    assert sorted(r["status"] for r in results) == ["completed"] + ["deduplicated"] * 4


async def test_a_cancel_sent_before_the_run_stops_it_before_the_first_step(
    runtime: AgentRuntime, redis_client: redis.asyncio.Redis
) -> None:
    command = run_command()
    cancel = {"command": "cancel", "session_id": command["session_id"]}

    assert (await run_agent_task(cancel, runtime=runtime))["status"] == "cancel_requested"
    result = await run_agent_task(command, task_id="r", runtime=runtime)

    assert (result["status"], result["steps"]) == ("cancelled", 0)
    assert await session_events(redis_client, command["session_id"]) == [
        "run.started",
        "run.cancelled",
    ]
    assert not await redis_client.exists(keys.session_cancel_key(command["session_id"]))


async def test_a_cancel_during_a_run_takes_effect_between_steps(
    runtime: AgentRuntime, redis_client: redis.asyncio.Redis
) -> None:
    command = run_command(steps=50, work_ms=5000)
    running = asyncio.create_task(run_agent_task(command, task_id="long", runtime=runtime))
    await eventually(
        lambda: _has_step(redis_client, command["session_id"]), timeout_s=5, what="a step"
    )

    await run_agent_task(
        {"command": "cancel", "session_id": command["session_id"]}, runtime=runtime
    )
    result = await asyncio.wait_for(running, timeout=5)

    assert result["status"] == "cancelled"
    assert 0 < result["steps"] < 50


async def test_a_failing_step_records_the_failure_and_frees_the_command_for_a_retry(
    redis_client: redis.asyncio.Redis,
) -> None:
    command = run_command(steps=3, dedup_key="retry-me")
    failing = _runtime(redis_client, FailingAgent(fail_at=1))

    with pytest.raises(AgentRunError, match="the model said no"):
        await run_agent_task(command, task_id="f", runtime=failing)

    history = await events.read_session(redis_client, session_id=command["session_id"])
    assert history[-1].type == "run.failed"
    assert "the model said no" in history[-1].fields["error"]
    retried = await run_agent_task(command, task_id="f2", runtime=_runtime(redis_client))
    assert retried["status"] == "completed"


async def test_a_step_may_end_the_run_early(redis_client: redis.asyncio.Redis) -> None:
    result = await run_agent_task(
        run_command(steps=10), task_id="e", runtime=_runtime(redis_client, EarlyFinish())
    )

    assert (result["status"], result["steps"]) == ("completed", 2)


async def test_a_redelivered_copy_waits_out_a_dead_workers_claim_and_finishes_the_run(
    redis_client: redis.asyncio.Redis,
) -> None:
    command = run_command(dedup_key="crashy")
    store = SessionStore(redis_client)
    dead = await store.claim(
        dedup_key="crashy",
        session_id=command["session_id"],
        owner="task-9:deadbeef",
        task_id="task-9",
        lease_ms=600,
        started={"type": "run.started", "task_id": "task-9", "ms": "1"},
        deduplicated={"type": "run.deduplicated", "task_id": "task-9", "ms": "1"},
    )
    assert dead.status == "claimed"

    result = await run_agent_task(
        command, task_id="task-9", runtime=_runtime(redis_client, lease_s=0.6)
    )

    assert result["status"] == "completed"
    history = await session_events(redis_client, command["session_id"])
    assert history.count("run.completed") == 1


async def test_a_run_whose_claim_vanished_with_redis_data_still_completes(
    redis_client: redis.asyncio.Redis,
) -> None:
    class FlushMidRun:
        async def __call__(self, step: StepInput) -> StepResult:
            if step.index == 1:
                await redis_client.flushdb()
            await asyncio.sleep(0.06)
            return StepResult()

    command = run_command(steps=3)
    result = await run_agent_task(
        command, task_id="x", runtime=_runtime(redis_client, FlushMidRun())
    )

    assert result["status"] == "completed"
    assert "run.completed" in await session_events(redis_client, command["session_id"])


async def test_a_run_taken_over_by_another_worker_stops_without_a_second_outcome(
    redis_client: redis.asyncio.Redis,
) -> None:
    class Usurped:
        async def __call__(self, step: StepInput) -> StepResult:
            if step.index == 0:
                await redis_client.set(keys.dedup_key("taken"), "run:other:1234")
            return StepResult()

    command = run_command(steps=2, dedup_key="taken")
    result = await run_agent_task(command, task_id="me", runtime=_runtime(redis_client, Usurped()))

    assert result["status"] == "superseded"
    assert await events.read_session(redis_client, session_id=command["session_id"])
    assert "run.completed" not in await session_events(redis_client, command["session_id"])


def test_an_agent_step_is_loaded_by_import_path() -> None:
    step = load_agent_step("tests.worker.test_runtime:EarlyFinish")

    assert isinstance(step, EarlyFinish)


@pytest.mark.parametrize(
    ("path", "complaint"),
    [
        ("no_colon_or_dot", "must look like"),
        ("tests.worker.nowhere:Agent", "cannot import 'tests.worker.nowhere'"),
        ("tests.worker.test_runtime:Missing", "has no attribute 'Missing'"),
        ("tests.worker.test_runtime:_runtime", "is not an agent step"),
    ],
)
def test_a_bad_agent_step_path_is_refused_clearly(path: str, complaint: str) -> None:
    with pytest.raises(AgentStepError, match=complaint):
        load_agent_step(path)


async def _has_step(client: redis.asyncio.Redis, session_id: str) -> bool:
    return "step" in await session_events(client, session_id)
