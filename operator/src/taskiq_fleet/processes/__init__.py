"""Local target: a group of worker processes on one machine, resized with drain on scale-in."""

from taskiq_fleet.processes.group import GroupSettings, ProcessGroup
from taskiq_fleet.processes.idle import (
    HeartbeatReader,
    HeartbeatSource,
    WorkerLoad,
    drain_order,
    loads_by_worker,
)
from taskiq_fleet.processes.worker import WorkerProcess, WorkerState

__all__ = [
    "GroupSettings",
    "HeartbeatReader",
    "HeartbeatSource",
    "ProcessGroup",
    "WorkerLoad",
    "WorkerProcess",
    "WorkerState",
    "drain_order",
    "loads_by_worker",
]
