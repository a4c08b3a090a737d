"""The control loop both drivers share: probe, decide, apply to a target, report.

One :class:`PoolController` per pool keeps the engine's memory between polls;
:func:`run_polls` drives it on a fixed period. A driver supplies a :class:`Target`
(a Deployment, a group of local processes) and a :class:`Probe`.
"""

from taskiq_fleet.control.controller import PollOutcome, PoolController, reason_label
from taskiq_fleet.control.loop import run_polls
from taskiq_fleet.control.target import Probe, Target, TargetError

__all__ = [
    "PollOutcome",
    "PoolController",
    "Probe",
    "Target",
    "TargetError",
    "reason_label",
    "run_polls",
]
