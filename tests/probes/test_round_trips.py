"""All pools on one Redis are read together: one pipelined round trip per batch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio
from redis.asyncio.connection import AbstractConnection

from taskiq_fleet.probes import BrokerKind, PoolReading, ProbeError, QueueRef, RedisProbe
from tests.probes.conftest import put_heartbeat

pytestmark = pytest.mark.integration


class Wire:
    """Counts what a probe sends: packets (round trips) and the commands in them."""

    def __init__(self) -> None:
        self.sends = 0
        self.commands: list[tuple[Any, ...]] = []


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    wire = Wire()
    send = AbstractConnection.send_packed_command
    pack = AbstractConnection.pack_commands

    async def counting_send(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
        wire.sends += 1
        await send(self, *args, **kwargs)

    def recording_pack(self: AbstractConnection, commands: Any) -> Any:
        commands = list(commands)
        wire.commands.extend(tuple(c) for c in commands)
        return pack(self, commands)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting_send)
    monkeypatch.setattr(AbstractConnection, "pack_commands", recording_pack)
    return wire


def _list(name: str, weight: float = 1.0) -> QueueRef:
    return QueueRef(kind=BrokerKind.LIST, name=name, weight=weight)


def _stream(name: str) -> QueueRef:
    return QueueRef(kind=BrokerKind.STREAM, name=name)


async def _warm_up(probe: RedisProbe, wire: Wire) -> None:
    """Connect first, so the handshake is not counted as a read."""
    await probe.read([_list("warm-up")])
    wire.sends = 0
    wire.commands.clear()


async def test_many_pools_read_at_once_share_one_round_trip(
    probe: RedisProbe, redis_client: redis.asyncio.Redis, wire: Wire
) -> None:
    for n in range(20):
        await redis_client.lpush(f"list-{n}", *range(n + 1))
        await redis_client.xgroup_create(f"stream-{n}", "taskiq", id="$", mkstream=True)
        await redis_client.xadd(f"stream-{n}", {"d": n})
    await _warm_up(probe, wire)

    pools = [[_list(f"list-{n}"), _stream(f"stream-{n}")] for n in range(20)]
    readings = await asyncio.gather(*(probe.read(queues) for queues in pools))

    assert wire.sends == 1
    assert [r.queues[0].waiting for r in readings] == [n + 1 for n in range(20)]
    assert [r.queues[1].waiting for r in readings] == [1] * 20


async def test_a_queue_shared_by_pools_is_read_once(
    probe: RedisProbe, redis_client: redis.asyncio.Redis, wire: Wire
) -> None:
    await redis_client.lpush("shared", "a", "b")
    await _warm_up(probe, wire)
    first, second = await asyncio.gather(
        probe.read([_list("shared")]), probe.read([_list("shared", weight=3.0)])
    )
    llens = [c for c in wire.commands if c[0] == "LLEN"]
    assert llens == [("LLEN", "shared")]
    assert (first.waiting, second.waiting) == (2, 6)


async def test_a_read_after_a_batch_went_out_starts_the_next_batch(
    probe: RedisProbe, wire: Wire
) -> None:
    await _warm_up(probe, wire)
    await probe.read([_list("a")])
    await probe.read([_list("b")])
    assert wire.sends == 2


async def test_a_bad_key_fails_only_the_pools_that_name_it(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    await redis_client.set("broken", "not a list")
    await redis_client.lpush("fine", "x")
    good, bad = await asyncio.gather(
        probe.read([_list("fine")]), probe.read([_list("broken")]), return_exceptions=True
    )
    assert isinstance(good, PoolReading)
    assert good.waiting == 1
    assert isinstance(bad, ProbeError)
    assert "'broken'" in str(bad)


async def test_a_caller_that_gives_up_does_not_disturb_the_others(
    probe: RedisProbe, redis_client: redis.asyncio.Redis
) -> None:
    await redis_client.lpush("q", "x")
    impatient = asyncio.create_task(probe.read([_list("q")]))
    patient = asyncio.create_task(probe.read([_list("q")]))
    await asyncio.sleep(0)
    impatient.cancel()
    reading = await patient
    assert reading.waiting == 1
    assert impatient.cancelled()


async def test_readings_of_one_batch_share_one_server_clock(
    probe: RedisProbe, redis_client: redis.asyncio.Redis, wire: Wire
) -> None:
    await put_heartbeat(redis_client, queue="a", worker="w", in_flight=1, capacity=2)
    await put_heartbeat(redis_client, queue="b", worker="w", in_flight=3, capacity=4)
    await _warm_up(probe, wire)
    a, b = await asyncio.gather(probe.read([_list("a")]), probe.read([_list("b")]))
    assert [c[0] for c in wire.commands].count("TIME") == 1
    assert (a.in_flight, b.in_flight) == (1, 3)


async def test_a_closed_probe_fails_waiting_callers_instead_of_leaving_them_hanging(
    redis_url: str,
) -> None:
    probe = RedisProbe(redis_url, batch_window_s=5.0)
    waiting = asyncio.create_task(probe.read([_list("q")]))
    await asyncio.sleep(0.01)
    await probe.aclose()
    with pytest.raises(ProbeError):
        await asyncio.wait_for(waiting, timeout=2)
