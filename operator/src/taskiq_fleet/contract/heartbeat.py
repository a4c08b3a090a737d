"""Worker heartbeats: who is alive on a queue, how much it holds, how much it can hold.

A worker process publishes its heartbeat every ``interval`` into the queue's heartbeat
hash (``keys.heartbeat_key``). The stamp is taken from the Redis server's clock inside
a script, never from the worker's, so a skewed pod clock cannot make a live worker
look dead or a dead one look alive. A heartbeat older than its own ``ttl_ms`` belongs
to a dead worker: probes ignore it and the next write by any worker removes it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from taskiq_fleet.contract import keys

#: How often a worker writes its heartbeat, and how long one stays valid. Three missed
#: beats mark a worker dead: long enough to ride out a GC pause, short enough that an
#: operator stops counting a killed pod's in-flight work within one scaling period.
DEFAULT_INTERVAL_S: Final = 2.0
DEFAULT_TTL_S: Final = 6.0

# KEYS[1] heartbeat hash; ARGV: worker id, JSON body without stamp, ttl ms.
# Stamps with server time, prunes expired fields, keeps the hash itself expiring.
_PUBLISH_LUA: Final = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local body = cjson.decode(ARGV[2])
body['stamp_ms'] = now_ms
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(body))
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local ok, other = pcall(cjson.decode, all[i + 1])
  if (not ok) or type(other) ~= 'table' or other['stamp_ms'] == nil
     or other['ttl_ms'] == nil or other['stamp_ms'] + other['ttl_ms'] < now_ms then
    redis.call('HDEL', KEYS[1], all[i])
  end
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return now_ms
"""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """One worker process's report: identity, work held now, and how much it can hold."""

    worker_id: str
    pod: str
    pid: int
    in_flight: int
    capacity: int
    ttl_ms: int
    stamp_ms: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {
                "pod": self.pod,
                "pid": self.pid,
                "in_flight": self.in_flight,
                "capacity": self.capacity,
                "ttl_ms": self.ttl_ms,
            },
            separators=(",", ":"),
        )

    def alive_at(self, now_ms: int) -> bool:
        return self.stamp_ms + self.ttl_ms >= now_ms


class _AsyncRedis(Protocol):
    async def eval(self, script: str, numkeys: int, *keys_and_args: str) -> object: ...

    async def hdel(self, name: str, *fields: str) -> object: ...


async def publish(client: _AsyncRedis, *, queue: str, heartbeat: Heartbeat) -> None:
    """Write (or refresh) ``heartbeat`` for ``queue``, stamped with the server's clock."""
    await client.eval(
        _PUBLISH_LUA,
        1,
        keys.heartbeat_key(queue),
        heartbeat.worker_id,
        heartbeat.to_json(),
        str(heartbeat.ttl_ms),
    )


async def withdraw(client: _AsyncRedis, *, queue: str, worker_id: str) -> None:
    """Remove a worker's heartbeat at clean shutdown, so its capacity stops counting now."""
    await client.hdel(keys.heartbeat_key(queue), worker_id)


def parse_all(raw: Mapping[bytes | str, bytes | str]) -> tuple[list[Heartbeat], list[str]]:
    """Decode a heartbeat hash as returned by ``HGETALL``.

    Returns the heartbeats and the ids of fields that could not be decoded; a field
    written by a foreign or newer writer is reported, never allowed to break a probe.
    """
    beats: list[Heartbeat] = []
    bad: list[str] = []
    for raw_id, raw_body in raw.items():
        worker_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
        try:
            body = json.loads(raw_body)
            beats.append(
                Heartbeat(
                    worker_id=worker_id,
                    pod=str(body["pod"]),
                    pid=int(body["pid"]),
                    in_flight=max(0, int(body["in_flight"])),
                    capacity=max(0, int(body["capacity"])),
                    ttl_ms=int(body["ttl_ms"]),
                    stamp_ms=int(body["stamp_ms"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            # Gives up on this one field only: the rest of the queue's workers still count.
            bad.append(worker_id)
    return beats, bad
