"""Writing a TaskiqWorkerPool's status, the one part of the pool the operator writes.

The operator is the status subresource's only writer, so it sends the whole status at
once (a JSON patch ``add`` of ``/status``): no stale condition or field survives, and
no read is needed first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio import client

from taskiq_fleet.contract import keys
from taskiq_fleet.kube.errors import call_api
from taskiq_fleet.kube.workload import PoolRef


async def write_status(api: client.ApiClient, *, pool: PoolRef, status: Mapping[str, Any]) -> None:
    """Replace the pool's status; raises :class:`~taskiq_fleet.kube.errors.KubeError`."""
    objects = client.CustomObjectsApi(api)
    patch = [{"op": "add", "path": "/status", "value": dict(status)}]
    await call_api(
        objects.patch_namespaced_custom_object_status(
            keys.API_GROUP, keys.API_VERSION, pool.namespace, keys.PLURAL, pool.name, patch
        ),
        action=f"writing the status of TaskiqWorkerPool {pool}",
    )
