"""The control loop's target on Kubernetes: a Deployment or StatefulSet and its scale.

An owned Deployment is read from the watch-fed :class:`WorkloadCache`; a workload named
by ``scaleTargetRef`` is read from the API at each poll (it carries no pool label to
watch by). The replica count is written through the scale subresource, and only when
it changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes_asyncio import client

from taskiq_fleet.contract import keys
from taskiq_fleet.kube import pods
from taskiq_fleet.kube.cache import WorkloadCache
from taskiq_fleet.kube.errors import KubeError, call_api

WorkloadKind = Literal["Deployment", "StatefulSet"]

#: Reads the live heartbeats of a pool's workers: Pod name -> tasks in flight.
InFlightByPod = Callable[[], Awaitable[Mapping[str, int]]]


@dataclass(frozen=True, slots=True)
class WorkloadRef:
    namespace: str
    name: str
    kind: WorkloadKind = "Deployment"
    owned: bool = True

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


class WorkloadTarget:
    """Implements :class:`taskiq_fleet.control.Target` for one pool's workload."""

    def __init__(
        self,
        *,
        api: client.ApiClient,
        workload: WorkloadRef,
        cache: WorkloadCache,
        in_flight_by_pod: InFlightByPod,
    ) -> None:
        self._api = api
        self._apps = client.AppsV1Api(api)
        self.workload = workload
        self._cache = cache
        self._in_flight_by_pod = in_flight_by_pod

    async def replicas(self) -> tuple[int, int]:
        ref = self.workload
        if ref.owned:
            seen = self._cache.get(namespace=ref.namespace, name=ref.name)
            if seen is not None:
                return seen.replicas, seen.ready_replicas
        body = await self._read()
        if ref.owned:
            seen = self._cache.observe(body)
            return seen.replicas, seen.ready_replicas
        replicas = (body.get("spec") or {}).get("replicas")
        ready = (body.get("status") or {}).get("readyReplicas") or 0
        return (1 if replicas is None else int(replicas)), int(ready)

    async def set_replicas(self, replicas: int) -> None:
        ref = self.workload
        body = {"spec": {"replicas": replicas}}
        if ref.kind == "Deployment":
            request = self._apps.patch_namespaced_deployment_scale(ref.name, ref.namespace, body)
        else:
            request = self._apps.patch_namespaced_stateful_set_scale(ref.name, ref.namespace, body)
        await call_api(request, action=f"scaling {ref} to {replicas}")
        if ref.owned:
            self._cache.scaled(namespace=ref.namespace, name=ref.name, replicas=replicas)

    async def mark_idle_first(self, *, remove: int) -> Sequence[str]:
        in_flight = await self._in_flight_by_pod()
        return await pods.mark_idle_first(
            self._api,
            namespace=self.workload.namespace,
            label_selector=await self._pod_selector(),
            in_flight_by_pod=in_flight,
            remove=remove,
        )

    async def _read(self) -> dict[str, Any]:
        ref = self.workload
        request: Awaitable[object]
        if ref.kind == "Deployment":
            request = self._apps.read_namespaced_deployment(ref.name, ref.namespace)
        else:
            request = self._apps.read_namespaced_stateful_set(ref.name, ref.namespace)
        try:
            live = await call_api(request, action=f"reading {ref}")
        except KubeError as exc:
            # Holds: without the current count nothing is decided this poll.
            if exc.status == 404:
                raise _missing(ref) from None
            raise
        body: dict[str, Any] = self._api.sanitize_for_serialization(live)
        return body

    async def _pod_selector(self) -> str:
        ref = self.workload
        if ref.owned:
            return f"{keys.LABEL_POOL}={ref.name}"
        if ref.kind == "Deployment":
            request = self._apps.read_namespaced_deployment_scale(ref.name, ref.namespace)
        else:
            request = self._apps.read_namespaced_stateful_set_scale(ref.name, ref.namespace)
        scale = await call_api(request, action=f"reading the scale of {ref}")
        selector = scale.status.selector if scale.status else None
        if not selector:
            raise KubeError(
                f"{ref} reports no Pod selector; scaling in without choosing idle Pods",
                temporary=True,
                reason="NoSelector",
            )
        return str(selector)


def _missing(ref: WorkloadRef) -> KubeError:
    if ref.owned:
        return KubeError(
            f"{ref} does not exist yet; the operator creates it from spec.worker.template",
            temporary=True,
            reason="WorkloadMissing",
            status=404,
        )
    return KubeError(
        f"{ref} named by spec.scaleTargetRef does not exist; create it or fix the name",
        temporary=False,
        reason="WorkloadMissing",
        status=404,
    )
