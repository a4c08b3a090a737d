"""The supervisor with real ``taskiq worker`` processes and a real Redis-compatible server."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from prometheus_client import CollectorRegistry

from taskiq_fleet.control import PollOutcome
from taskiq_fleet.local.supervisor import LocalPool, Supervisor
from taskiq_fleet.redis_server import free_port
from taskiq_fleet.telemetry.metrics import FleetMetrics
from tests.local.helpers import (
    done_tokens,
    enqueue,
    eventually,
    make_pool,
    sleepy_worker_command,
    worker_env,
)

pytestmark = pytest.mark.integration

#: A worker that holds no task and dies with the default SIGTERM action.
SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


@asynccontextmanager
async def running(
    pool: LocalPool, outcomes: list[PollOutcome], **group: float
) -> AsyncIterator[Supervisor]:
    """The supervisor running in this loop; on exit it drains and must return promptly."""

    async def record(outcome: PollOutcome) -> None:
        outcomes.append(outcome)

    supervisor = Supervisor(
        pool,
        metrics=FleetMetrics(CollectorRegistry()),
        on_outcome=record,
        env=worker_env(),
        **group,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    try:
        yield supervisor
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=pool.drain_timeout_s + 10)


async def test_load_scales_workers_out_and_drains_them_back_in_with_nothing_lost(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    pool = make_pool(
        redis_url,
        command=sleepy_worker_command(concurrency=2, drain_s=10),
        min_replicas=1,
        max_replicas=4,
    )
    tokens = [f"task-{i}" for i in range(24)]
    outcomes: list[PollOutcome] = []
    caplog.set_level(logging.INFO, logger="taskiq_fleet")

    async with running(pool, outcomes) as supervisor:
        await eventually(lambda: len(supervisor.group.running) == 1, timeout_s=10,
                         what="the first worker")  # fmt: skip
        await enqueue(redis_url, tokens=tokens, work_ms=700)

        async def all_done() -> bool:
            return len(await done_tokens(redis_url)) >= len(tokens)

        await eventually(all_done, timeout_s=60, what="all 24 tasks to finish")
        await eventually(
            lambda: len(supervisor.group.workers) == 1,
            timeout_s=30,
            what="the pool to drain back to one worker",
        )

    done = await done_tokens(redis_url)
    assert sorted(done) == sorted(tokens), "a task was lost or ran twice"
    assert max(o.desired for o in outcomes) >= 3
    scale_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("scale ")]
    assert any(" to=1 " in line for line in scale_lines), scale_lines
    assert not [r for r in caplog.records if "did not drain" in r.getMessage()]


async def test_a_worker_command_that_exits_at_once_backs_off_instead_of_spinning(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    crashing = [sys.executable, "-c", "import sys; print('cannot import app: boom'); sys.exit(3)"]
    pool = make_pool(redis_url, command=crashing, min_replicas=1, max_replicas=1)
    caplog.set_level(logging.INFO, logger="taskiq_fleet")
    window_s = 4.0

    async with running(
        pool, [], min_uptime_s=1.0, backoff_initial_s=0.2, backoff_max_s=10.0
    ) as supervisor:
        await eventually(lambda: supervisor.group.started_total >= 1, timeout_s=10,
                         what="a first start")  # fmt: skip
        await asyncio.sleep(window_s)  # the window over which restarts are counted
        started = supervisor.group.started_total
        last_error = supervisor.group.last_error

    # A spin would restart a 50 ms command ~80 times in the window; backoff: 0.2, 0.4, ...
    assert 2 <= started <= 7, f"{started} starts in {window_s}s"
    assert last_error is not None
    assert "exited at once" in last_error
    assert "exit code 3" in last_error
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("cannot import app: boom" in message for message in errors)


async def test_an_unreachable_redis_is_reported_once_without_its_password_and_workers_held(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    url = f"redis://:s3cret-pw@127.0.0.1:{port}/0"
    pool = make_pool(url, command=SLEEPER, min_replicas=2, max_replicas=5)
    outcomes: list[PollOutcome] = []
    caplog.set_level(logging.INFO, logger="taskiq_fleet")

    async with running(pool, outcomes) as supervisor:
        await eventually(lambda: len(outcomes) >= 4, timeout_s=20, what="four polls")
        running_now = len(supervisor.group.running)

    assert running_now == 2
    assert all(not o.broker_reachable and o.desired == 2 for o in outcomes)
    assert outcomes[0].probe_error_kind == "temporary"
    reported = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR and "cannot read the queue" in r.getMessage()
    ]
    assert len(reported) == 1
    assert f"redis://:***@127.0.0.1:{port}/0" in reported[0]
    assert "s3cret-pw" not in caplog.text
    assert "Holding 2 worker(s)" in reported[0]
