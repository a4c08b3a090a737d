"""What the control loop scales, and what it reads the queue through.

A *target* is a group of interchangeable workers whose size the loop sets: a
Deployment for the operator, a set of local processes for ``taskiq-fleet local``.
Both drivers implement the same small protocol, so the loop that decides and applies
is one piece of code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from taskiq_fleet.probes.types import PoolReading, QueueRef


class TargetError(Exception):
    """A target could not be read or changed.

    ``temporary`` errors (an API server or process table that did not answer) are
    retried on the next poll; permanent ones (the workload is gone, access is denied)
    need a person. The message must be safe to show: no password, no token.
    """

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


class Target(Protocol):
    """A group of workers of one pool whose replica count the control loop sets."""

    async def replicas(self) -> tuple[int, int]:
        """The current and ready replica counts, in that order.

        *current* is what the target is set to right now (what the last
        ``set_replicas`` asked for, or the workload's own spec); *ready* is how many
        workers are up and able to take tasks. Raises :class:`TargetError`.
        """
        ...

    async def set_replicas(self, replicas: int) -> None:
        """Ask for ``replicas`` workers. Scale-in drains: no task may be lost.

        Returns once the request is accepted; workers may take longer to start or to
        drain. Raises :class:`TargetError`.
        """
        ...

    async def mark_idle_first(self, *, remove: int) -> Sequence[str]:
        """Arrange that the next scale-in by ``remove`` takes idle workers first.

        Called just before a ``set_replicas`` that lowers the count. Returns the ids of
        the workers chosen to go first (pod names, process names): possibly fewer than
        ``remove``, or none when no worker is known to be idle. Raises
        :class:`TargetError`; the loop then scales in all the same, since workers drain
        what they hold on the way out.
        """
        ...


class Probe(Protocol):
    """Reads a pool's queues (:class:`taskiq_fleet.probes.RedisProbe` is one)."""

    async def read(self, queues: Sequence[QueueRef]) -> PoolReading:
        """Read all ``queues`` at once; raises :class:`~taskiq_fleet.probes.types.ProbeError`."""
        ...
