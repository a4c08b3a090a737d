"""Creating, updating and adopting the worker Deployment a pool owns.

Writes happen only when something differs: the Pod template is compared by the hash
the operator stored on the Deployment when it last wrote it, never field by field
against what the API server returns (which has defaults filled in). An operator
restart therefore rewrites nothing.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any, cast

from kubernetes_asyncio import client

from taskiq_fleet.contract import keys
from taskiq_fleet.kube.cache import SeenWorkload, WorkloadCache
from taskiq_fleet.kube.errors import KubeError, call_api
from taskiq_fleet.kube.workload import (
    PoolRef,
    WorkerSettings,
    pool_labels,
    render_deployment,
    render_pod_template,
    template_hash,
)

logger = logging.getLogger(__name__)


class Change(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    ADOPTED = "adopted"
    UNCHANGED = "unchanged"


async def ensure_deployment(
    api: client.ApiClient,
    *,
    pool: PoolRef,
    worker: WorkerSettings,
    initial_replicas: int,
    cache: WorkloadCache,
) -> Change:
    """Make the pool's Deployment match its spec; raises :class:`KubeError`.

    ``initial_replicas`` is used only when the Deployment is created; after that the
    replica count belongs to the control loop and is changed through the scale
    subresource only.
    """
    apps = client.AppsV1Api(api)
    try:
        live = await call_api(
            apps.read_namespaced_deployment(pool.name, pool.namespace),
            action=f"reading Deployment {pool}",
        )
    except KubeError as exc:
        if exc.status != 404:
            raise
        live = None

    if live is None:
        body = render_deployment(pool=pool, worker=worker, replicas=initial_replicas)
        try:
            created = await call_api(
                # The client sends a plain dict as it is; the stub only knows the model class.
                apps.create_namespaced_deployment(pool.namespace, cast(client.V1Deployment, body)),
                action=f"creating Deployment {pool}",
            )
        except KubeError as exc:
            if exc.status != 409:
                raise
            # Created meanwhile (the pool's poll loop and its create handler both make
            # sure it exists): read it and carry on as with any existing Deployment.
            live = await call_api(
                apps.read_namespaced_deployment(pool.name, pool.namespace),
                action=f"reading Deployment {pool}",
            )
        else:
            cache.observe(api.sanitize_for_serialization(created))
            return Change.CREATED

    live_body: dict[str, Any] = api.sanitize_for_serialization(live)
    seen = cache.observe(live_body)
    adopting = seen.owner_uid != pool.uid
    if adopting:
        _check_adoptable(seen=seen, pool=pool)
    template = render_pod_template(pool=pool, worker=worker)
    digest = template_hash(template)
    if not adopting and seen.template_hash == digest:
        return Change.UNCHANGED

    # A JSON patch replaces the whole template, so fields the user removed go away too;
    # the replica count is left alone. Labels, annotations and owners of others stay.
    metadata = live_body.get("metadata") or {}
    others = [
        ref
        for ref in metadata.get("ownerReferences") or []
        if not ref.get("controller") and ref.get("uid") != pool.uid
    ]
    patch: list[dict[str, Any]] = [
        {"op": "replace", "path": "/spec/template", "value": template},
        {
            "op": "add",
            "path": "/metadata/labels",
            "value": {**(metadata.get("labels") or {}), **pool_labels(pool)},
        },
        {
            "op": "add",
            "path": "/metadata/annotations",
            "value": {
                **(metadata.get("annotations") or {}),
                keys.ANNOTATION_TEMPLATE_HASH: digest,
            },
        },
        {
            "op": "add",
            "path": "/metadata/ownerReferences",
            "value": [*others, pool.owner_reference()],
        },
    ]
    updated = await call_api(
        apps.patch_namespaced_deployment(pool.name, pool.namespace, patch),
        action=f"updating Deployment {pool}",
    )
    cache.observe(api.sanitize_for_serialization(updated))
    return Change.ADOPTED if adopting else Change.UPDATED


def _check_adoptable(*, seen: SeenWorkload, pool: PoolRef) -> None:
    """A Deployment of the pool's name is taken over only if it was made for this pool.

    That is the case after the pool was deleted with ``--cascade=orphan`` and created
    again: the Deployment still carries the pool label and has no controller. Anything
    else belongs to someone else and is left untouched.
    """
    if seen.pool == pool.name and seen.owner_uid is None:
        return
    owner = "another TaskiqWorkerPool" if seen.owner_uid else "no TaskiqWorkerPool"
    raise KubeError(
        f"Deployment {pool} already exists and belongs to {owner}; rename the pool, delete "
        "the Deployment, or name it in spec.scaleTargetRef to scale it as it is",
        temporary=False,
        reason="WorkloadConflict",
        status=409,
    )
