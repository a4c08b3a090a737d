"""The local process group on its own: replacing, draining and killing real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from taskiq_fleet.contract.heartbeat import Heartbeat
from taskiq_fleet.processes import GroupSettings, HeartbeatSource, ProcessGroup
from tests.local.helpers import eventually

SLEEPER = (sys.executable, "-c", "import time; time.sleep(600)")
#: Ignores SIGTERM, and forks a child that does too: only SIGKILL to the group ends both.
STUBBORN = (
    sys.executable,
    "-c",
    "import os, signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "if os.fork() == 0:\n"
    "    print('child', os.getpid(), flush=True)\n"
    "time.sleep(600)\n",
)


@asynccontextmanager
async def group_of(
    settings: GroupSettings, heartbeats: HeartbeatSource | None = None
) -> AsyncIterator[ProcessGroup]:
    group = ProcessGroup(settings, heartbeats=heartbeats)
    stop = asyncio.Event()
    task = asyncio.create_task(group.run(stop))
    try:
        yield group
    finally:
        stop.set()
        await task
        await group.shutdown(grace_s=2)


def alive(pid: int) -> bool:
    """Running or sleeping; a zombie waiting for its reaper counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_a_crashed_worker_is_replaced() -> None:
    async with group_of(GroupSettings(command=SLEEPER, name_prefix="w")) as group:
        await group.set_replicas(2)
        await eventually(lambda: len(group.running) == 2, timeout_s=5, what="two workers")
        victim = group.running[0]

        os.kill(victim.pid, signal.SIGKILL)

        await eventually(
            lambda: group.started_total == 3 and len(group.running) == 2,
            timeout_s=5,
            what="a replacement worker",
        )
        assert victim.name not in group.workers
        assert group.replaced_total == 1
        assert group.fast_failures == 1  # it died within min_uptime_s


class FakeHeartbeats:
    """Heartbeats as the workers' middleware would publish them: pod name and load."""

    def __init__(self) -> None:
        self.in_flight: dict[str, int] = {}

    async def read(self) -> list[Heartbeat]:
        return [
            Heartbeat(worker_id=pod, pod=pod, pid=1, in_flight=n, capacity=4, ttl_ms=6000)
            for pod, n in self.in_flight.items()
        ]


async def test_scale_in_drains_the_idle_worker_first_not_the_youngest() -> None:
    beats = FakeHeartbeats()
    async with group_of(GroupSettings(command=SLEEPER, name_prefix="w"), beats) as group:
        await group.set_replicas(3)
        await eventually(lambda: len(group.running) == 3, timeout_s=5, what="three workers")
        oldest, middle, youngest = sorted(group.running, key=lambda w: w.started_s)
        beats.in_flight = {oldest.name: 0, middle.name: 3, youngest.name: 2}

        marked = await group.mark_idle_first(remove=1)
        await group.set_replicas(2)

        assert marked == [oldest.name]
        assert [w.name for w in group.draining] == [oldest.name]
        await eventually(lambda: oldest.name not in group.workers, timeout_s=5,
                         what="the drained worker to exit")  # fmt: skip
        assert len(group.running) == 2
        assert group.replaced_total == 0


async def test_without_heartbeats_the_youngest_workers_go_first() -> None:
    async with group_of(GroupSettings(command=SLEEPER, name_prefix="w")) as group:
        await group.set_replicas(3)
        await eventually(lambda: len(group.running) == 3, timeout_s=5, what="three workers")
        youngest = max(group.running, key=lambda w: w.started_s)

        assert await group.mark_idle_first(remove=1) == []
        await group.set_replicas(2)

        assert [w.name for w in group.draining] == [youngest.name]


async def test_a_worker_that_ignores_sigterm_is_killed_with_its_children_after_the_timeout() -> (
    None
):
    settings = GroupSettings(command=STUBBORN, name_prefix="w", drain_timeout_s=1.0)
    async with group_of(settings) as group:
        await group.set_replicas(1)
        await eventually(lambda: len(group.running) == 1, timeout_s=5, what="a worker")
        worker = group.running[0]
        await eventually(lambda: any("child" in line for line in worker.tail), timeout_s=5,
                         what="the worker's child")  # fmt: skip
        child_pid = int(next(line for line in worker.tail if "child" in line).split()[1])
        started = asyncio.get_running_loop().time()

        await group.set_replicas(0)
        await eventually(lambda: not group.workers, timeout_s=10, what="the kill")

        assert asyncio.get_running_loop().time() - started >= 1.0
        assert worker.returncode == -signal.SIGKILL
        assert not alive(worker.pid)
        await eventually(lambda: not alive(child_pid), timeout_s=5, what="the child's end")
