"""Polling on a fixed period, stopping promptly, surviving a poll that raises."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from taskiq_fleet.control import PollOutcome, PoolController, run_polls
from taskiq_fleet.probes.types import PoolReading, QueueRef
from taskiq_fleet.telemetry.metrics import FleetMetrics, PoolKey
from tests.control.fakes import QUEUE, FakeProbe, FakeTarget, quick_policy


class ExplodingProbe(FakeProbe):
    """Raises something no probe should, once, then reads normally."""

    exploded = False

    async def read(self, queues: Sequence[QueueRef]) -> PoolReading:
        if not self.exploded:
            self.exploded = True
            self.reads += 1
            raise RuntimeError("unexpected reply")
        return await super().read(queues)


def controller_with(probe: FakeProbe) -> PoolController:
    return PoolController(
        key=PoolKey(namespace="local", pool="agents"),
        policy=quick_policy(),
        queues=[QUEUE],
        probe=probe,
        target=FakeTarget(current=1),
        metrics=FleetMetrics(CollectorRegistry()),
    )


async def test_polls_repeat_until_stopped_and_stop_promptly() -> None:
    probe = FakeProbe(waiting=0)
    controller = controller_with(probe)
    stop = asyncio.Event()
    seen: list[PollOutcome] = []

    async def record(outcome: PollOutcome) -> None:
        seen.append(outcome)
        if len(seen) == 3:
            stop.set()

    started = time.monotonic()
    await asyncio.wait_for(
        run_polls(controller, interval_s=0.05, stop=stop, on_outcome=record), timeout=5
    )

    assert len(seen) == 3
    assert time.monotonic() - started < 2.0


async def test_a_poll_that_raises_is_counted_and_the_loop_goes_on() -> None:
    probe = ExplodingProbe()
    controller = controller_with(probe)
    stop = asyncio.Event()

    async def stop_on_first(_: PollOutcome) -> None:
        stop.set()

    await asyncio.wait_for(
        run_polls(controller, interval_s=0.01, stop=stop, on_outcome=stop_on_first), timeout=5
    )

    assert probe.reads == 2
    errors = controller.metrics.registry.get_sample_value(
        "taskiq_fleet_reconcile_errors_total",
        {"namespace": "local", "pool": "agents", "stage": "poll"},
    )
    assert errors == 1
