"""Choosing which local workers go first on scale-in, from their heartbeats."""

from __future__ import annotations

import os
import subprocess
import sys

from taskiq_fleet.contract.heartbeat import Heartbeat
from taskiq_fleet.processes import WorkerLoad, drain_order, loads_by_worker


def beat(*, pod: str, pid: int, in_flight: int) -> Heartbeat:
    return Heartbeat(
        worker_id=f"{pod}-{pid}", pod=pod, pid=pid, in_flight=in_flight, capacity=4, ttl_ms=6000
    )


def test_idle_workers_go_first_then_unheard_ones_then_the_least_busy() -> None:
    loads = [
        WorkerLoad(name="busy-3", in_flight=3),
        WorkerLoad(name="idle", in_flight=0),
        WorkerLoad(name="new", in_flight=None),
        WorkerLoad(name="busy-1", in_flight=1),
    ]

    order, idle = drain_order(loads)

    assert order == ["idle", "new", "busy-1", "busy-3"]
    assert idle == ["idle"]


def test_a_heartbeat_matches_its_worker_by_pod_name() -> None:
    loads = loads_by_worker(
        workers={"w-1": 999_991, "w-2": 999_992},
        beats=[beat(pod="w-2", pid=1, in_flight=2), beat(pod="elsewhere", pid=2, in_flight=5)],
    )

    assert loads == [WorkerLoad(name="w-1", in_flight=None), WorkerLoad(name="w-2", in_flight=2)]


def test_a_heartbeat_from_a_forked_child_matches_the_worker_by_pid() -> None:
    # This test process plays the worker's main process; a real child plays taskiq's fork.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        loads = loads_by_worker(
            workers={"me": os.getpid()},
            beats=[beat(pod="unnamed", pid=child.pid, in_flight=0)],
        )
    finally:
        child.kill()
        child.wait()

    assert loads == [WorkerLoad(name="me", in_flight=0)]
