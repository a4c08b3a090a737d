"""A pool's reports: status writes that never hold up a poll, and one Event per change.

The reporter's seams are its two ways out: here a status writer that can stall or
fail on cue, and a list that records the Events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from taskiq_fleet.control import PollOutcome
from taskiq_fleet.engine.types import Decision, EngineState
from taskiq_fleet.handlers.reporting import Reporter
from taskiq_fleet.handlers.status import Problem
from taskiq_fleet.kube.errors import KubeError
from taskiq_fleet.kube.workload import PoolRef
from taskiq_fleet.probes.types import BrokerKind, PoolReading, QueueReading, QueueRef

POOL = PoolRef(namespace="shop", name="orders", uid="1234")
QUEUE = QueueRef(kind=BrokerKind.LIST, name="orders", weight=1.0)


class StatusWriter:
    """Records each status written; stalls while ``flowing`` is clear; fails on cue."""

    def __init__(self) -> None:
        self.written: list[Mapping[str, Any]] = []
        self.started = 0
        self.failures: list[KubeError] = []
        self.flowing = asyncio.Event()
        self.flowing.set()

    async def __call__(self, status: Mapping[str, Any]) -> None:
        self.started += 1
        await self.flowing.wait()
        if self.failures:
            raise self.failures.pop(0)
        self.written.append(status)


class Events(list[tuple[str, str, str]]):
    def __call__(self, kind: str, reason: str, message: str) -> None:
        self.append((kind, reason, message))

    @property
    def reasons(self) -> list[str]:
        return [reason for _kind, reason, _message in self]


def reporter_of(writer: StatusWriter, events: Events, **options: Any) -> Reporter:
    return Reporter(
        pool=POOL,
        write=writer,
        post_event=events,
        previous=None,
        figures_interval_s=60.0,
        **options,
    )


def scaled(current: int, desired: int, *, probe_error: str | None = None) -> PollOutcome:
    """A poll that moved ``current`` replicas to ``desired`` (or held on a probe error)."""
    reading = PoolReading(
        queues=(
            QueueReading(
                queue=QUEUE, waiting=10 * desired, in_flight=0, oldest_age_s=1.0, workers=1,
                capacity=10,
            ),
        )
    )  # fmt: skip
    return PollOutcome(
        pool=str(POOL),
        at_s=10.0,
        current=current,
        ready=current,
        decision=Decision(
            desired=desired, reason=f"work {10 * desired} / target 10", state=EngineState()
        ),
        reading=None if probe_error else reading,
        probe_error=probe_error,
        probe_error_kind="temporary" if probe_error else None,
        applied=True,
    )


def report(reporter: Reporter, outcome: PollOutcome | None, problem: Problem | None = None) -> None:
    reporter.report(outcome=outcome, problem=problem, generation=1, workload=None, paused=False)


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_stalled_write_holds_up_no_poll_and_the_newest_status_goes_next() -> None:
    writer, events = StatusWriter(), Events()
    reporter = reporter_of(writer, events)
    writer.flowing.clear()

    report(reporter, scaled(1, 2))
    await settle()
    report(reporter, scaled(2, 3))
    report(reporter, scaled(3, 4))
    await settle()

    assert writer.started == 1
    assert reporter.last_status is not None
    assert reporter.last_status["replicas"] == 4
    writer.flowing.set()
    await settle()
    assert [status["replicas"] for status in writer.written] == [2, 4]
    await reporter.aclose()


async def test_a_failed_write_is_retried_at_the_next_poll_and_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="taskiq_fleet")
    writer, events = StatusWriter(), Events()
    denied = KubeError(
        "writing the status of TaskiqWorkerPool shop/orders: access denied", temporary=False,
        reason="Forbidden", status=403,
    )  # fmt: skip
    writer.failures = [denied, denied]
    reporter = reporter_of(writer, events)

    for _ in range(3):
        report(reporter, scaled(2, 2))
        await settle()

    assert writer.started == 3
    assert len(writer.written) == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "access denied" in warnings[0].getMessage()
    await reporter.aclose()


async def test_closing_drops_a_write_that_does_not_end() -> None:
    writer, events = StatusWriter(), Events()
    reporter = reporter_of(writer, events, close_wait_s=0.05)
    writer.flowing.clear()
    report(reporter, scaled(1, 2))
    await settle()

    await asyncio.wait_for(reporter.aclose(), timeout=1)
    await settle()

    assert writer.written == []
    assert not [task for task in asyncio.all_tasks() if task.get_name().startswith("status ")]


async def test_each_replica_change_is_one_event_with_its_reason() -> None:
    writer, events = StatusWriter(), Events()
    reporter = reporter_of(writer, events)

    report(reporter, scaled(0, 2))
    report(reporter, scaled(2, 2))
    report(reporter, scaled(2, 1))

    assert events == [
        ("Normal", "ScaledUp", "0 -> 2 replicas: work 20 / target 10"),
        ("Normal", "ScaledDown", "2 -> 1 replicas: work 10 / target 10"),
    ]
    await reporter.aclose()


async def test_a_problem_is_one_event_when_it_starts_and_one_when_it_ends() -> None:
    writer, events = StatusWriter(), Events()
    reporter = reporter_of(writer, events)
    missing = Problem("SecretMissing", "Secret shop/redis named by spec.broker... does not exist")

    report(reporter, None, missing)
    report(reporter, None, missing)
    report(reporter, scaled(1, 1))
    report(reporter, scaled(1, 1, probe_error="Redis at redis://u:***@r:6379/0 did not answer"))
    report(reporter, scaled(1, 1, probe_error="Redis at redis://u:***@r:6379/0 did not answer"))
    report(reporter, scaled(1, 1))

    assert events.reasons == ["SecretMissing", "Recovered", "BrokerUnreachable", "BrokerReachable"]
    assert events[0][0] == events[2][0] == "Warning"
    await reporter.aclose()
