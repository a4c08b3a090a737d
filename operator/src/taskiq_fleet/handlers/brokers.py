"""One probe per Redis server, shared by every pool that uses it.

Pools name their Redis through a Secret; many pools usually share one server. The
registry hands out one :class:`RedisProbe` per (URL, CA) pair, so concurrent polls of
those pools coalesce into one pipelined round trip, and closes it when the last pool
lets go. The same connection settings serve the heartbeat reads that pick idle Pods.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio
import redis.exceptions

from taskiq_fleet.contract import heartbeat, keys
from taskiq_fleet.contract.redis_url import redact
from taskiq_fleet.control import TargetError
from taskiq_fleet.probes import RedisProbe

logger = logging.getLogger(__name__)

#: Seconds to wait for Redis when reading heartbeats before a scale-in.
HEARTBEAT_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where a pool's Redis is: the URL (secret) and an optional PEM CA bundle."""

    url: str = field(repr=False)
    ca_pem: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return redact(self.url)


@dataclass(slots=True)
class _Shared:
    probe: RedisProbe
    client: redis.asyncio.Redis
    users: int = 0


class BrokerLease:
    """A pool's hold on a shared probe; give it back with :meth:`BrokerRegistry.release`."""

    def __init__(self, *, address: BrokerAddress, shared: _Shared) -> None:
        self.address = address
        self._shared = shared

    @property
    def probe(self) -> RedisProbe:
        return self._shared.probe

    async def in_flight_by_pod(self, queues: Sequence[str]) -> Mapping[str, int]:
        """Tasks in flight per Pod, from the live heartbeats of ``queues``."""
        try:
            async with self._shared.client.pipeline(transaction=False) as pipe:
                pipe.time()
                for queue in queues:
                    pipe.hgetall(keys.heartbeat_key(queue))
                replies = await pipe.execute()
        except (redis.exceptions.RedisError, OSError) as exc:
            # Gives up on choosing: the scale-in goes ahead, workers drain on the way out.
            raise TargetError(
                f"cannot read worker heartbeats from {self.address}: {type(exc).__name__}",
                temporary=True,
            ) from None
        seconds, micros = replies[0]
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        loads: dict[str, int] = {}
        for raw in replies[1:]:
            beats, _unreadable = heartbeat.parse_all(raw)
            for beat in beats:
                if beat.alive_at(now_ms):
                    loads[beat.pod] = loads.get(beat.pod, 0) + beat.in_flight
        return loads


class BrokerRegistry:
    """Probes by (URL, CA); single event loop, no locking needed."""

    def __init__(self, *, ca_dir: Path | None = None) -> None:
        self._shared: dict[BrokerAddress, _Shared] = {}
        self._ca_dir = ca_dir or Path(tempfile.mkdtemp(prefix="taskiq-fleet-ca-"))

    def acquire(self, address: BrokerAddress) -> BrokerLease:
        """A lease on the probe for ``address``; raises ``ProbeError`` for a bad URL."""
        shared = self._shared.get(address)
        if shared is None:
            ca_file = self._ca_file(address.ca_pem)
            probe = RedisProbe(address.url, ca_file=ca_file)
            tls = address.url.startswith("rediss://")
            client = _heartbeat_client(address.url, ca_file=ca_file if tls else None)
            shared = self._shared[address] = _Shared(probe=probe, client=client)
            logger.debug("probe opened for %s", address)
        shared.users += 1
        return BrokerLease(address=address, shared=shared)

    async def release(self, lease: BrokerLease) -> None:
        shared = self._shared.get(lease.address)
        if shared is None:
            return
        shared.users -= 1
        if shared.users <= 0:
            del self._shared[lease.address]
            await _close(shared)
            logger.debug("probe closed for %s", lease.address)

    async def aclose(self) -> None:
        shared, self._shared = list(self._shared.values()), {}
        for entry in shared:
            await _close(entry)

    def __len__(self) -> int:
        return len(self._shared)

    def _ca_file(self, pem: str | None) -> str | None:
        if pem is None:
            return None
        path = self._ca_dir / f"{hashlib.sha256(pem.encode()).hexdigest()[:16]}.pem"
        if not path.exists():
            path.write_text(pem)
        return str(path)


def _heartbeat_client(url: str, *, ca_file: str | None) -> redis.asyncio.Redis:
    if ca_file is None:
        return redis.asyncio.Redis.from_url(
            url,
            socket_timeout=HEARTBEAT_TIMEOUT_S,
            socket_connect_timeout=HEARTBEAT_TIMEOUT_S,
            max_connections=2,
        )
    # Only a rediss:// connection takes a CA; a plain one refuses the argument.
    return redis.asyncio.Redis.from_url(
        url,
        ssl_ca_certs=ca_file,
        socket_timeout=HEARTBEAT_TIMEOUT_S,
        socket_connect_timeout=HEARTBEAT_TIMEOUT_S,
        max_connections=2,
    )


async def _close(shared: _Shared) -> None:
    await shared.probe.aclose()
    await shared.client.aclose()
