"""A pool's status: its conditions, and when a new one is worth a write."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from taskiq_fleet.control import PollOutcome
from taskiq_fleet.engine.types import Decision, EngineState
from taskiq_fleet.handlers.status import (
    Problem,
    build_status,
    conditions_for,
    worth_writing,
)
from taskiq_fleet.probes.types import BrokerKind, PoolReading, QueueReading, QueueRef

QUEUE = QueueRef(kind=BrokerKind.LIST, name="orders", weight=2.0)


def outcome(**changes: Any) -> PollOutcome:
    reading = PoolReading(
        queues=(
            QueueReading(
                queue=QUEUE, waiting=7, in_flight=3, oldest_age_s=4.26, workers=1, capacity=10
            ),
        )
    )
    base = PollOutcome(
        pool="shop/orders",
        at_s=10.0,
        current=1,
        ready=1,
        decision=Decision(
            desired=2, reason="scale up 1->2: work 20 / target 10", state=EngineState()
        ),
        reading=reading,
        applied=True,
    )
    return replace(base, **changes)


def by_type(conditions: list[Any]) -> dict[str, Any]:
    return {c.type: c for c in conditions}


def status_of(poll: PollOutcome | None, **kw: Any) -> dict[str, Any]:
    conditions = conditions_for(
        outcome=poll, problem=kw.pop("problem", None), paused=False, workload="Deployment x"
    )
    return build_status(
        generation=3,
        workload="Deployment shop/orders",
        outcome=poll,
        conditions=conditions,
        previous=kw.pop("previous", None),
        last_scale_time=None,
        now=kw.pop("now", "2026-01-01T00:00:00Z"),
    )


def test_a_good_poll_reports_raw_counts_and_the_replicas_it_set() -> None:
    status = status_of(outcome())

    assert status["queueDepth"] == 7
    assert status["inFlight"] == 3
    assert status["oldestTaskAgeSeconds"] == 4.3
    assert status["desiredReplicas"] == 2
    assert status["replicas"] == 2
    assert status["observedGeneration"] == 3
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {
        "Ready": "True",
        "BrokerReachable": "True",
        "ScalingActive": "True",
        "ScalingLimited": "False",
    }


def test_a_failed_probe_marks_the_broker_unreachable_and_holds() -> None:
    held = Decision(
        desired=1, reason="hold: probe failed (1 in a row)", state=EngineState(), held=True
    )
    poll = outcome(
        reading=None,
        decision=held,
        probe_error="Redis at x did not answer",
        probe_error_kind="temporary",
    )

    conditions = by_type(conditions_for(outcome=poll, problem=None, paused=False, workload=None))

    assert conditions["BrokerReachable"].status == "False"
    assert conditions["BrokerReachable"].reason == "ProbeFailed"
    assert conditions["BrokerReachable"].message == "Redis at x did not answer"
    assert conditions["ScalingActive"].status == "False"
    assert conditions["ScalingActive"].reason == "HoldingReplicas"
    assert "queueDepth" not in status_of(poll)


def test_a_problem_before_polling_names_its_reason_everywhere_it_matters() -> None:
    problem = Problem(
        "SecretMissing", "Secret shop/redis named by spec.broker.redis.urlSecretRef does not exist"
    )

    conditions = by_type(conditions_for(outcome=None, problem=problem, paused=False, workload=None))

    assert conditions["Ready"].reason == "SecretMissing"
    assert conditions["BrokerReachable"].status == "Unknown"
    assert conditions["ScalingActive"].status == "False"


def test_a_paused_pool_says_so() -> None:
    conditions = by_type(
        conditions_for(outcome=outcome(), problem=None, paused=True, workload=None)
    )

    assert conditions["ScalingActive"].reason == "Paused"


def test_a_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    first = status_of(outcome(), now="2026-01-01T00:00:00Z")
    second = status_of(outcome(), previous=first, now="2026-01-01T00:05:00Z")

    times = {c["lastTransitionTime"] for c in second["conditions"]}
    assert times == {"2026-01-01T00:00:00Z"}


def test_only_figures_changed_waits_for_the_figures_interval() -> None:
    written = status_of(outcome())
    unreachable = status_of(
        outcome(reading=None, probe_error="Redis at x did not answer", probe_error_kind="temporary")
    )
    moved_figures = dict(written, queueDepth=8)

    assert worth_writing(
        status=unreachable, written=written, since_write_s=0.1, figures_interval_s=5
    )
    assert not worth_writing(
        status=moved_figures, written=written, since_write_s=1, figures_interval_s=5
    )
    assert worth_writing(
        status=moved_figures, written=written, since_write_s=6, figures_interval_s=5
    )
    assert not worth_writing(
        status=written, written=written, since_write_s=600, figures_interval_s=5
    )


def test_a_replica_change_is_written_at_once() -> None:
    written = status_of(outcome())
    scaled = dict(written, replicas=3, desiredReplicas=3)

    assert worth_writing(status=scaled, written=written, since_write_s=0.0, figures_interval_s=60)
