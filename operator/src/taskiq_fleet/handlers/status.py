"""A pool's status, built from what one poll saw, and when it is worth writing.

Every write of the status is a request to the API server and a watch event for every
client watching pools, the operator included. So a status is written when something a
person acts on changes (replicas, a condition, the generation acted on) at once, and
when only the queue's figures moved, at most every ``figures_interval_s``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from taskiq_fleet.contract import keys
from taskiq_fleet.control import PollOutcome

READY: Final = "Ready"
BROKER_REACHABLE: Final = "BrokerReachable"
SCALING_ACTIVE: Final = "ScalingActive"
SCALING_LIMITED: Final = "ScalingLimited"

#: Fields that move with every task; written at a bounded rate.
_FIGURES: Final = frozenset({"queueDepth", "inFlight", "oldestTaskAgeSeconds", "lastDecision"})


@dataclass(frozen=True, slots=True)
class Problem:
    """Something that keeps the pool from being scaled, as a condition shows it."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str


def conditions_for(
    *, outcome: PollOutcome | None, problem: Problem | None, paused: bool, workload: str | None
) -> list[Condition]:
    """The four conditions, from a poll's outcome or the problem that prevented one."""
    if outcome is None or problem is not None:
        cause = problem or Problem("NotPolled", "the pool has not been polled yet")
        return [
            Condition(READY, "False", cause.reason, cause.message),
            Condition(BROKER_REACHABLE, "Unknown", "NotProbed", f"not read: {cause.message}"),
            Condition(SCALING_ACTIVE, "False", cause.reason, cause.message),
            Condition(SCALING_LIMITED, "False", "NotScaling", "no decision was made"),
        ]
    ready = _ready(outcome=outcome, workload=workload)
    if outcome.probe_error is None:
        broker = Condition(BROKER_REACHABLE, "True", "ProbeSucceeded", "Redis answered")
    else:
        reason = "ProbeRefused" if outcome.probe_error_kind == "permanent" else "ProbeFailed"
        broker = Condition(BROKER_REACHABLE, "False", reason, outcome.probe_error)
    return [ready, broker, _active(outcome=outcome, paused=paused), _limited(outcome)]


def _ready(*, outcome: PollOutcome, workload: str | None) -> Condition:
    if outcome.target_error is not None and outcome.target_error_stage == "read":
        return Condition(READY, "False", "WorkloadUnavailable", outcome.target_error)
    shown = workload or "the workload"
    return Condition(
        READY, "True", "WorkloadFound", f"{shown}: {outcome.ready} of {outcome.current} ready"
    )


def _active(*, outcome: PollOutcome, paused: bool) -> Condition:
    decision = outcome.decision
    if paused:
        message = f"the annotation {keys.ANNOTATION_PAUSED} is set; replicas are held"
        return Condition(SCALING_ACTIVE, "False", "Paused", message)
    if outcome.target_error is not None:
        reason = "ScaleFailed" if outcome.target_error_stage == "scale" else "TargetUnreadable"
        return Condition(SCALING_ACTIVE, "False", reason, outcome.target_error)
    if decision is not None and decision.held:
        return Condition(SCALING_ACTIVE, "False", "HoldingReplicas", decision.reason)
    return Condition(SCALING_ACTIVE, "True", "Scaling", "replicas follow the queue")


def _limited(outcome: PollOutcome) -> Condition:
    decision = outcome.decision
    if decision is not None and decision.limited:
        return Condition(SCALING_LIMITED, "True", "Limited", decision.reason)
    return Condition(SCALING_LIMITED, "False", "WithinLimits", "the desired count was not capped")


def build_status(
    *,
    generation: int | None,
    workload: str | None,
    outcome: PollOutcome | None,
    conditions: list[Condition],
    previous: Mapping[str, Any] | None,
    last_scale_time: str | None,
    now: str,
) -> dict[str, Any]:
    """The whole status object; ``now`` is an RFC 3339 time, ``previous`` the last written."""
    status: dict[str, Any] = {}
    if generation is not None:
        status["observedGeneration"] = generation
    if workload is not None:
        status["workload"] = workload
    if outcome is not None and outcome.decision is not None:
        status["desiredReplicas"] = outcome.desired
        status["replicas"] = outcome.desired if outcome.changed else outcome.current
        status["readyReplicas"] = outcome.ready
        status["lastDecision"] = outcome.decision.reason
    if outcome is not None and outcome.reading is not None:
        queues = outcome.reading.queues
        status["queueDepth"] = sum(queue.waiting for queue in queues)
        status["inFlight"] = sum(queue.in_flight for queue in queues)
        age = outcome.reading.oldest_age_s
        if age is not None:
            status["oldestTaskAgeSeconds"] = round(age, 1)
    if last_scale_time is not None:
        status["lastScaleTime"] = last_scale_time
    before = {c["type"]: c for c in (previous or {}).get("conditions", [])}
    status["conditions"] = [
        _condition(c, before=before.get(c.type), generation=generation, now=now) for c in conditions
    ]
    return status


def _condition(
    condition: Condition, *, before: Mapping[str, Any] | None, generation: int | None, now: str
) -> dict[str, Any]:
    unchanged = before is not None and before.get("status") == condition.status
    entry: dict[str, Any] = {
        "type": condition.type,
        "status": condition.status,
        "reason": condition.reason,
        "message": condition.message,
        "lastTransitionTime": before.get("lastTransitionTime", now)
        if unchanged and before
        else now,
    }
    if generation is not None:
        entry["observedGeneration"] = generation
    return entry


def essence(status: Mapping[str, Any]) -> str:
    """What a person acts on: the status without the moving figures and messages."""
    kept = {key: value for key, value in status.items() if key not in _FIGURES}
    kept["conditions"] = [
        (c.get("type"), c.get("status"), c.get("reason")) for c in status.get("conditions", [])
    ]
    return json.dumps(kept, sort_keys=True)


def worth_writing(
    *,
    status: Mapping[str, Any],
    written: Mapping[str, Any] | None,
    since_write_s: float,
    figures_interval_s: float,
) -> bool:
    """Whether ``status`` should be written now, given the last one written."""
    if written is None:
        return True
    if essence(status) != essence(written):
        return True
    return since_write_s >= figures_interval_s and dict(status) != dict(written)
