"""Real ``taskiq worker`` processes and an in-process producer, for the worker tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import redis.asyncio
from prometheus_client import CollectorRegistry
from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask

from taskiq_fleet.contract import events, heartbeat, keys
from taskiq_fleet_worker.app import build_broker
from taskiq_fleet_worker.settings import (
    AgentSettings,
    RedisSettings,
    Settings,
    TaskiqSettings,
    WorkerSettings,
)
from taskiq_fleet_worker.tasks import RUN_COMMAND_TASK_NAME

REPO = Path(__file__).resolve().parents[2]
TASKIQ = Path(sys.executable).parent / "taskiq"
Kind = Literal["list", "stream"]
QUEUE = "default"


@dataclass
class WorkerProcess:
    """A ``taskiq worker`` started by a test, with its output in a file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def kill_group(self) -> None:
        """SIGKILL the parent and its worker children at once: a crashed pod."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """End the worker and any child it left, whatever state it is in."""
        with contextlib.suppress(ProcessLookupError):
            # Already gone: the test's own signal or the worker's exit got there first.
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def worker_env(redis_url: str, *, kind: Kind, name: str, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TASKIQ_", "AGENT_", "WORKER_", "REDIS_"))
    }
    return (
        env
        | {
            "PYTHONPATH": str(REPO),
            "REDIS_URL": redis_url,
            "TASKIQ_BROKER_KIND": kind,
            "TASKIQ_FLEET_POD_NAME": name,
            "WORKER_METRICS_PORT": "0",
            "AGENT_WORK_MS": "0",
        }
        | extra
    )


def start_worker(
    redis_url: str,
    *,
    tmp_path: Path,
    kind: Kind = "list",
    concurrency: int = 4,
    drain_s: float = 10,
    extra_args: tuple[str, ...] = (),
    **env: str,
) -> WorkerProcess:
    name = f"pod-{uuid.uuid4().hex[:6]}"
    log_path = tmp_path / f"{name}.log"
    command = [
        str(TASKIQ), "worker", "taskiq_fleet_worker.app:broker", "taskiq_fleet_worker.tasks",
        "--workers", "1",
        "--max-async-tasks", str(concurrency),
        "--wait-tasks-timeout", str(drain_s),
        *extra_args,
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env=worker_env(redis_url, kind=kind, name=name, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=tmp_path,
        )
    return WorkerProcess(name=name, process=process, log_path=log_path)


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout_s: float, what: str, interval_s: float = 0.05
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(interval_s)


async def wait_ready(
    client: redis.asyncio.Redis, worker: WorkerProcess, *, timeout_s: float = 30
) -> heartbeat.Heartbeat:
    """The worker's first heartbeat: it has started and is about to listen."""

    async def beat() -> heartbeat.Heartbeat | None:
        if worker.process.poll() is not None:
            pytest.fail(f"worker exited with {worker.process.returncode}:\n{worker.log()[-3000:]}")
        beats, _ = heartbeat.parse_all(await client.hgetall(keys.heartbeat_key(QUEUE)))
        return next((b for b in beats if b.pod == worker.name), None)

    found: heartbeat.Heartbeat = await eventually(
        beat, timeout_s=timeout_s, what=f"a heartbeat of {worker.name}"
    )
    return found


def wait_exit(worker: WorkerProcess, *, timeout_s: float) -> int:
    try:
        return worker.process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker still running after {timeout_s} s:\n{worker.log()[-3000:]}")


def producer_settings(redis_url: str, *, kind: Kind = "list", **taskiq: Any) -> Settings:
    return Settings(
        redis=RedisSettings(url=redis_url),
        taskiq=TaskiqSettings(broker_kind=kind, **taskiq),
        agent=AgentSettings(),
        worker=WorkerSettings(metrics_port=0),
    )


def producer(
    redis_url: str, *, kind: Kind = "list", **taskiq: Any
) -> tuple[AsyncBroker, AsyncTaskiqDecoratedTask[[dict[str, Any]], Any]]:
    """A broker like the worker's, and a task of the agent's name to ``.kiq`` with."""
    settings = producer_settings(redis_url, kind=kind, **taskiq)
    broker = build_broker(settings, metrics_registry=CollectorRegistry())

    async def run_command(command: dict[str, Any]) -> dict[str, Any]:
        """Stands for the worker's task; only its name and labels travel."""
        return command

    task = broker.register_task(
        run_command, task_name=RUN_COMMAND_TASK_NAME, timeout=settings.taskiq.task_timeout_s
    )
    return broker, task


def run_command(**fields: Any) -> dict[str, Any]:
    return {"command": "run", "session_id": str(uuid.uuid4())} | fields


async def session_events(client: redis.asyncio.Redis, session_id: str) -> list[str]:
    return [event.type for event in await events.read_session(client, session_id=session_id)]


async def terminal_events(client: redis.asyncio.Redis, session_id: str) -> list[str]:
    return [t for t in await session_events(client, session_id) if t in events.TERMINAL]
