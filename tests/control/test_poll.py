"""One poll of one pool against an in-memory target, probe and clock."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from taskiq_fleet.control import PoolController, TargetError, reason_label
from taskiq_fleet.probes.types import ProbeError
from taskiq_fleet.telemetry.metrics import FleetMetrics, PoolKey
from tests.control.fakes import QUEUE, FakeClock, FakeProbe, FakeTarget, quick_policy

KEY = PoolKey(namespace="local", pool="agents")


def make_controller(
    *, probe: FakeProbe, target: FakeTarget, clock: FakeClock | None = None
) -> tuple[PoolController, FleetMetrics]:
    metrics = FleetMetrics(CollectorRegistry())
    controller = PoolController(
        key=KEY,
        policy=quick_policy(),
        queues=[QUEUE],
        probe=probe,
        target=target,
        metrics=metrics,
        clock=clock or FakeClock(),
        wall_clock=lambda: 1_700_000_000.0,
    )
    return controller, metrics


def sample(metrics: FleetMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(
        name, {"namespace": "local", "pool": "agents", **labels}
    )


async def test_more_work_than_capacity_scales_out_and_logs_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = FakeTarget(current=1)
    controller, metrics = make_controller(probe=FakeProbe(waiting=35), target=target)

    with caplog.at_level(logging.INFO, logger="taskiq_fleet.control"):
        outcome = await controller.poll()

    assert outcome.decision is not None
    assert (outcome.current, outcome.desired, outcome.changed) == (1, 4, True)
    assert target.calls == [("set_replicas", 4)]
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(info) == 1
    assert info[0].startswith("scale pool=local/agents from=1 to=4 reason=")
    assert sample(metrics, "taskiq_fleet_pool_replicas", kind="desired") == 4
    assert sample(metrics, "taskiq_fleet_pool_replicas", kind="current") == 4
    assert sample(metrics, "taskiq_fleet_pool_waiting_tasks") == 35
    assert sample(metrics, "taskiq_fleet_queue_waiting_tasks", queue="default") == 35
    assert sample(metrics, "taskiq_fleet_pool_broker_up") == 1
    events = [
        s
        for family in metrics.registry.collect()
        if family.name == "taskiq_fleet_scale_events"
        for s in family.samples
        if s.name.endswith("_total")
    ]
    assert [(s.labels["direction"], s.value) for s in events] == [("up", 1.0)]


async def test_a_steady_pool_changes_nothing_and_logs_nothing_at_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = FakeTarget(current=2)
    controller, _ = make_controller(probe=FakeProbe(waiting=5, in_flight=15), target=target)

    with caplog.at_level(logging.DEBUG, logger="taskiq_fleet.control"):
        outcome = await controller.poll()

    assert (outcome.desired, outcome.changed, outcome.applied) == (2, False, True)
    assert target.calls == []
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert "pool=local/agents waiting=5" in caplog.records[0].getMessage()


async def test_scale_in_marks_idle_workers_before_lowering_replicas() -> None:
    target = FakeTarget(current=4, idle=["w-2", "w-3", "w-4", "w-1"])
    controller, _ = make_controller(probe=FakeProbe(waiting=0, in_flight=10), target=target)

    outcome = await controller.poll()

    assert target.calls == [("mark_idle_first", 3), ("set_replicas", 1)]
    assert outcome.marked_idle == ("w-2", "w-3", "w-4")
    assert outcome.changed


async def test_a_failed_mark_still_scales_in_and_counts_the_error() -> None:
    target = FakeTarget(current=3, mark_error=TargetError("heartbeats unreadable", temporary=True))
    controller, metrics = make_controller(probe=FakeProbe(in_flight=5), target=target)

    outcome = await controller.poll()

    assert target.current == 1
    assert outcome.changed
    assert sample(metrics, "taskiq_fleet_reconcile_errors_total", stage="mark_idle") == 1


async def test_a_failed_probe_holds_replicas_and_reports_the_error_kind() -> None:
    probe = FakeProbe(error=ProbeError("redis://127.0.0.1:1/0: connection refused", temporary=True))
    target = FakeTarget(current=3)
    controller, metrics = make_controller(probe=probe, target=target)

    outcome = await controller.poll()

    assert not outcome.broker_reachable
    assert outcome.probe_error_kind == "temporary"
    assert outcome.probe_error is not None
    assert "connection refused" in outcome.probe_error
    assert outcome.desired == 3
    assert target.calls == []
    assert sample(metrics, "taskiq_fleet_pool_broker_up") == 0
    assert sample(metrics, "taskiq_fleet_probe_errors_total", kind="temporary") == 1


async def test_a_probe_failure_is_logged_once_until_the_broker_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    probe = FakeProbe(error=ProbeError("connection refused", temporary=True))
    controller, _ = make_controller(probe=probe, target=FakeTarget(current=1))

    with caplog.at_level(logging.INFO, logger="taskiq_fleet.control"):
        for _ in range(3):
            await controller.poll()
        probe.error = None
        await controller.poll()

    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(" pool=")[0] for m in messages] == ["probe failed", "probe recovered"]


async def test_a_failed_scale_keeps_the_engine_windows_and_is_retried_next_poll() -> None:
    target = FakeTarget(current=1, scale_error=TargetError("api server timeout", temporary=True))
    clock = FakeClock()
    controller, metrics = make_controller(probe=FakeProbe(waiting=50), target=target, clock=clock)
    state_before = controller.state

    failed = await controller.poll()

    assert failed.target_error == "api server timeout"
    assert failed.target_error_stage == "scale"
    assert not failed.changed
    assert controller.state.recommendations == state_before.recommendations
    assert controller.state.scale_events == state_before.scale_events
    # What it saw of the work still counts: the pool was busy at this poll.
    assert controller.state.last_busy_s == clock.now_s
    assert sample(metrics, "taskiq_fleet_reconcile_errors_total", stage="scale") == 1

    target.scale_error = None
    clock.advance(2.0)
    retried = await controller.poll()
    assert retried.changed
    assert target.current == 5


async def test_a_failing_target_is_logged_when_it_fails_and_when_it_recovers_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = TargetError("the API server did not answer", temporary=True)
    target = FakeTarget(current=1, scale_error=down)
    clock = FakeClock()
    controller, metrics = make_controller(probe=FakeProbe(waiting=50), target=target, clock=clock)

    with caplog.at_level(logging.INFO, logger="taskiq_fleet.control"):
        for _ in range(5):
            await controller.poll()
            clock.advance(1.0)
        target.scale_error = TargetError("scale refused: forbidden", temporary=False)
        await controller.poll()
        target.scale_error = None
        clock.advance(1.0)
        await controller.poll()

    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(" error=")[0] for m in messages if m.startswith("target ")] == [
        "target error pool=local/agents stage=scale kind=temporary",
        "target error pool=local/agents stage=scale kind=permanent",
        "target recovered pool=local/agents stage=scale",
    ]
    assert sample(metrics, "taskiq_fleet_reconcile_errors_total", stage="scale") == 6
    assert target.current == 5


async def test_an_unreadable_target_decides_nothing() -> None:
    target = FakeTarget(read_error=TargetError("deployment agents not found", temporary=False))
    probe = FakeProbe(waiting=50)
    controller, metrics = make_controller(probe=probe, target=target)

    outcome = await controller.poll()

    assert outcome.decision is None
    assert outcome.target_error_stage == "read"
    assert probe.reads == 0
    assert sample(metrics, "taskiq_fleet_reconcile_errors_total", stage="read") == 1


async def test_an_unreadable_target_restarts_the_idle_clock() -> None:
    target = FakeTarget(current=2)
    clock = FakeClock()
    controller, _ = make_controller(probe=FakeProbe(waiting=0), target=target, clock=clock)
    await controller.poll()
    target.read_error = TargetError("the API server did not answer", temporary=True)
    clock.advance(600.0)

    await controller.poll()

    assert controller.state.last_busy_s == clock.now_s


async def test_a_paused_pool_observes_but_does_not_scale() -> None:
    target = FakeTarget(current=1)
    controller, metrics = make_controller(probe=FakeProbe(waiting=80), target=target)

    outcome = await controller.poll(paused=True)

    assert target.calls == []
    assert outcome.desired == 1
    assert sample(metrics, "taskiq_fleet_pool_waiting_tasks") == 80


async def test_polls_take_their_time_from_the_injected_clock() -> None:
    clock = FakeClock(now_s=42.0)
    controller, _ = make_controller(probe=FakeProbe(), target=FakeTarget(), clock=clock)

    first = await controller.poll()
    clock.advance(7.5)
    second = await controller.poll()

    assert (first.at_s, second.at_s) == (42.0, 49.5)


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        ("scale up: work 42 > 3 x 10", "scale_up"),
        ("Held (probe failed)", "held"),
        ("at max replicas", "at_max_replicas"),
        ("42", "other"),
    ],
)
def test_reason_labels_carry_no_figures(reason: str, label: str) -> None:
    assert reason_label(reason) == label
