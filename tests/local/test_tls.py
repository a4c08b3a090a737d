"""The supervisor reaching a rediss:// server signed by a private certificate authority."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio
from prometheus_client import CollectorRegistry

from taskiq_fleet.control import PollOutcome
from taskiq_fleet.local.supervisor import Supervisor
from taskiq_fleet.telemetry.metrics import FleetMetrics
from tests.local.helpers import eventually, make_pool, worker_env
from tests.probes.tls import Authority, TLSFront, make_authority

pytestmark = pytest.mark.integration

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


@pytest.fixture
async def tls_front(tmp_path: Path, redis_url: str) -> AsyncIterator[tuple[TLSFront, Authority]]:
    client = redis.asyncio.Redis.from_url(redis_url)
    await client.lpush("default", "a", "b", "c")
    await client.aclose()
    authority = make_authority(tmp_path / "ca")
    port = int(redis_url.rsplit(":", 1)[1].split("/", 1)[0])
    front = TLSFront(authority, backend_port=port)
    await front.start()
    try:
        yield front, authority
    finally:
        await front.stop()


async def test_a_private_ca_file_lets_the_supervisor_read_the_queue_over_tls(
    tls_front: tuple[TLSFront, Authority],
) -> None:
    front, authority = tls_front
    url = f"rediss://127.0.0.1:{front.port}/0"
    pool = make_pool(url, command=SLEEPER, min_replicas=1, max_replicas=1)
    pool = replace(pool, ca_file=str(authority.ca_file))
    outcomes: list[PollOutcome] = []

    async def record(outcome: PollOutcome) -> None:
        outcomes.append(outcome)

    supervisor = Supervisor(
        pool, metrics=FleetMetrics(CollectorRegistry()), on_outcome=record, env=worker_env()
    )
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    try:
        await eventually(lambda: bool(outcomes), timeout_s=10, what="a first poll")
        idle = await supervisor.group.mark_idle_first(remove=1)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)

    first = outcomes[0]
    assert first.broker_reachable, first.probe_error
    assert first.reading is not None
    assert first.reading.waiting == 3
    assert list(idle) == []  # heartbeats were read over TLS too; none were published
