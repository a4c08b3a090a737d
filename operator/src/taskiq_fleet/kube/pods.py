"""Steering scale-in towards idle workers with ``controller.kubernetes.io/pod-deletion-cost``.

A ReplicaSet asked to shrink removes Pods with the lowest deletion cost first. Before a
scale-in the operator sets each worker Pod's cost to the tasks it holds, as its
heartbeats report them: idle Pods (and Pods not heard from, which hold nothing) cost 0
and go first, the busiest go last. Only Pods whose cost changed are written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from kubernetes_asyncio import client

from taskiq_fleet.contract import keys
from taskiq_fleet.kube.errors import KubeError, call_api

#: Pods annotated at once; a large pool must not open hundreds of requests together.
_CONCURRENT_PATCHES: Final = 8
#: The annotation is an int32; a count of tasks is capped well inside it.
_MAX_COST: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class PodCost:
    name: str
    cost: int
    current: str | None
    idle: bool


def plan_costs(
    *, pods: Sequence[tuple[str, str | None]], in_flight_by_pod: Mapping[str, int]
) -> list[PodCost]:
    """Each Pod's new cost from its heartbeats; ``pods`` pairs names with current costs.

    The result is ordered as the ReplicaSet will remove them: idle first, busiest last.
    """
    plans = [
        PodCost(
            name=name,
            cost=min(_MAX_COST, max(0, in_flight_by_pod.get(name, 0))),
            current=current,
            idle=in_flight_by_pod.get(name, 0) <= 0,
        )
        for name, current in pods
    ]
    return sorted(plans, key=lambda plan: (plan.cost, plan.name))


async def mark_idle_first(
    api: client.ApiClient,
    *,
    namespace: str,
    label_selector: str,
    in_flight_by_pod: Mapping[str, int],
    remove: int,
) -> list[str]:
    """Set deletion costs on the workload's Pods; returns up to ``remove`` idle Pod names."""
    core = client.CoreV1Api(api)
    listed = await call_api(
        core.list_namespaced_pod(namespace, label_selector=label_selector),
        action=f"listing worker Pods in {namespace} ({label_selector})",
    )
    pods = [
        (pod.metadata.name, (pod.metadata.annotations or {}).get(keys.ANNOTATION_POD_DELETION_COST))
        for pod in listed.items
        if pod.metadata.deletion_timestamp is None
    ]
    plans = plan_costs(pods=pods, in_flight_by_pod=in_flight_by_pod)

    # Absent counts as 0, the API's own default: an idle Pod never annotated needs no write.
    changes = [plan for plan in plans if (plan.current or "0") != str(plan.cost)]
    limit = asyncio.Semaphore(_CONCURRENT_PATCHES)

    async def write(plan: PodCost) -> None:
        body = {"metadata": {"annotations": {keys.ANNOTATION_POD_DELETION_COST: str(plan.cost)}}}
        async with limit:
            try:
                await call_api(
                    core.patch_namespaced_pod(plan.name, namespace, body),
                    action=f"annotating Pod {namespace}/{plan.name}",
                )
            except KubeError as exc:
                if exc.status != 404:
                    raise
                # Holds: the Pod is already gone, which is what a scale-in wants.

    await asyncio.gather(*(write(plan) for plan in changes))
    return [plan.name for plan in plans if plan.idle][:remove]
