"""Which local workers are idle: their heartbeats, matched to processes by pid.

A ``taskiq worker`` parent forks the processes that actually run tasks, and those
publish the heartbeats; so a heartbeat belongs to a local worker when its pid is the
worker's own or one of its descendants'. The pod name the supervisor sets
(``TASKIQ_FLEET_POD_NAME``) is a second, equally good match.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import redis.asyncio
import redis.exceptions

from taskiq_fleet.contract import heartbeat, keys
from taskiq_fleet.contract.redis_url import redact
from taskiq_fleet.control import TargetError


@dataclass(frozen=True, slots=True)
class WorkerLoad:
    """What the heartbeats say about one local worker. ``None``: no heartbeat seen yet."""

    name: str
    in_flight: int | None


class HeartbeatSource(Protocol):
    async def read(self) -> list[heartbeat.Heartbeat]:
        """Live heartbeats of the pool's queues; raises a temporary ``TargetError``."""
        ...


class HeartbeatReader:
    """Reads the heartbeat hashes of a pool's queues with one pipelined round trip."""

    def __init__(
        self,
        *,
        redis_url: str,
        queues: Sequence[str],
        ca_file: str | None = None,
        timeout_s: float = 2.0,
    ) -> None:
        self._shown_url = redact(redis_url)
        self._queues = tuple(queues)
        # A CA bundle only means something for rediss://; plain redis:// takes no TLS options.
        if ca_file and redis_url.startswith("rediss:"):
            self._client = redis.asyncio.Redis.from_url(
                redis_url,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                ssl_ca_certs=ca_file,
            )
        else:
            self._client = redis.asyncio.Redis.from_url(
                redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
            )

    async def read(self) -> list[heartbeat.Heartbeat]:
        """Live heartbeats of every queue; raises a temporary ``TargetError`` on failure."""
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.time()
                for queue in self._queues:
                    pipe.hgetall(keys.heartbeat_key(queue))
                replies = await pipe.execute()
        except (redis.exceptions.RedisError, OSError) as exc:
            # Gives up for this poll: the caller scales in without a preference.
            raise TargetError(
                f"cannot read worker heartbeats from {self._shown_url}: {type(exc).__name__}",
                temporary=True,
            ) from None
        seconds, micros = replies[0]
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        beats: list[heartbeat.Heartbeat] = []
        for raw in replies[1:]:
            parsed, _bad = heartbeat.parse_all(raw)
            beats.extend(beat for beat in parsed if beat.alive_at(now_ms))
        return beats

    async def aclose(self) -> None:
        await self._client.aclose()


def loads_by_worker(
    *, workers: Mapping[str, int], beats: Iterable[heartbeat.Heartbeat]
) -> list[WorkerLoad]:
    """Sum heartbeats per local worker; ``workers`` maps worker name to its main pid."""
    tree = _descendants(set(workers.values()))
    in_flight: dict[str, int] = {}
    for beat in beats:
        for name, pid in workers.items():
            if beat.pod == name or beat.pid in tree.get(pid, {pid}):
                in_flight[name] = in_flight.get(name, 0) + beat.in_flight
                break
    return [WorkerLoad(name=name, in_flight=in_flight.get(name)) for name in workers]


def drain_order(loads: Sequence[WorkerLoad]) -> tuple[list[str], list[str]]:
    """Workers in the order they should go, and which of them are known to be idle.

    Idle by heartbeat first, then those not yet heard from (starting, holding
    nothing), then busy ones, least loaded first.
    """
    idle = [load.name for load in loads if load.in_flight == 0]
    unknown = [load.name for load in loads if load.in_flight is None]
    busy = sorted((load for load in loads if load.in_flight), key=lambda load: load.in_flight or 0)
    return [*idle, *unknown, *(load.name for load in busy)], idle


def _descendants(roots: set[int]) -> dict[int, set[int]]:
    """For each root pid, itself and every descendant, from the Linux process table."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            # A process that exited while we looked: it has no children to find.
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    tree: dict[int, set[int]] = {}
    for root in roots:
        seen = {root}
        stack = [root]
        while stack:
            for child in children.get(stack.pop(), []):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        tree[root] = seen
    return tree
