"""A deleted pool's series go with it; another pool's stay."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from taskiq_fleet.control import PoolController
from taskiq_fleet.telemetry.metrics import FleetMetrics, PoolKey
from tests.control.fakes import QUEUE, FakeClock, FakeProbe, FakeTarget, quick_policy


def _series_of(metrics: FleetMetrics, pool: str) -> list[str]:
    return [
        sample.name
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.labels.get("pool") == pool and not sample.name.endswith("_created")
    ]


async def test_forgetting_a_pool_drops_its_gauges_and_keeps_the_others() -> None:
    metrics = FleetMetrics(CollectorRegistry())
    for pool in ("gone", "kept"):
        controller = PoolController(
            key=PoolKey(namespace="shop", pool=pool),
            policy=quick_policy(),
            queues=[QUEUE],
            probe=FakeProbe(waiting=35),
            target=FakeTarget(current=1),
            metrics=metrics,
            clock=FakeClock(),
            wall_clock=lambda: 1_700_000_000.0,
        )
        await controller.poll()
    gauges = {"taskiq_fleet_queue_waiting_tasks", "taskiq_fleet_pool_replicas"}
    assert gauges <= set(_series_of(metrics, "gone"))

    metrics.forget(PoolKey(namespace="shop", pool="gone"))

    left = set(_series_of(metrics, "gone"))
    assert not left & {*gauges, "taskiq_fleet_pool_waiting_tasks", "taskiq_fleet_pool_broker_up"}
    assert gauges <= set(_series_of(metrics, "kept"))
