"""The Kopf handlers of TaskiqWorkerPools, on a registry of their own.

- create, update and resume: make the pool's worker Deployment match its spec;
- a daemon per pool: the poll loop (:mod:`taskiq_fleet.handlers.runner`);
- an event handler on the owned Deployments: keeps the replica cache current.

Handlers stay thin: the work is in ``kube`` (API writes) and ``control`` (decisions).
"""

from __future__ import annotations

import logging
from typing import Any, Final

import kopf

from taskiq_fleet.contract import keys
from taskiq_fleet.handlers import spec_view
from taskiq_fleet.handlers.runner import PoolRunner
from taskiq_fleet.handlers.runtime import Runtime
from taskiq_fleet.handlers.status import Problem
from taskiq_fleet.kube.deployments import Change, ensure_deployment
from taskiq_fleet.kube.errors import KubeError
from taskiq_fleet.kube.workload import PoolRef
from taskiq_fleet.spec import InvalidPoolSpecError, PoolSpec

logger = logging.getLogger("taskiq_fleet.operator")

registry = kopf.OperatorRegistry()

POOLS: Final = (keys.API_GROUP, keys.API_VERSION, keys.PLURAL)

#: Seconds before Kopf retries a workload write that failed for a passing reason, and
#: one that needs a person (which may have acted meanwhile: a conflicting Deployment
#: deleted, a permission granted).
_RETRY_SOON_S: Final = 5.0
_RETRY_LATER_S: Final = 60.0


def _runtime(memo: kopf.Memo) -> Runtime:
    runtime = memo.get("runtime")
    assert isinstance(runtime, Runtime), "the operator command puts its Runtime in the memo"
    return runtime


@kopf.on.login(registry=registry)
async def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """Kopf's own requests go out as ours do: in-cluster, else from the kubeconfig."""
    return await kopf.login_via_async_client(**kwargs)


@kopf.on.resume(*POOLS, registry=registry)
@kopf.on.create(*POOLS, registry=registry)
@kopf.on.update(*POOLS, registry=registry)
async def reconcile_workload(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Create, update or adopt the pool's Deployment; nothing to do for scaleTargetRef."""
    runtime = _runtime(memo)
    meta = body.metadata
    pool = PoolRef(namespace=str(meta.namespace), name=str(meta.name), uid=str(meta.uid))
    try:
        spec = PoolSpec.parse(dict(body.get("spec") or {}), what=f"TaskiqWorkerPool {pool}")
    except InvalidPoolSpecError as exc:
        # Gives up until the spec changes; the poll loop reports it in status and an Event.
        raise kopf.PermanentError(str(exc)) from None
    if spec.scale_target_ref is not None:
        runtime.workload_problems.pop(pool.uid, None)
        return

    try:
        change = await ensure_deployment(
            runtime.api,
            pool=pool,
            worker=spec_view.worker_settings(spec),
            initial_replicas=spec.scaling.min_replicas,
            cache=runtime.cache,
        )
    except KubeError as exc:
        # Retries: soon for a passing failure, later for one a person must fix first.
        runtime.workload_problems[pool.uid] = Problem(exc.reason, str(exc))
        delay = _RETRY_SOON_S if exc.temporary else _RETRY_LATER_S
        raise kopf.TemporaryError(str(exc), delay=delay) from None
    runtime.workload_problems.pop(pool.uid, None)
    if change is not Change.UNCHANGED:
        logger.info("workload pool=%s deployment=%s change=%s", pool, pool.name, change)
        kopf.event(
            body,
            type="Normal",
            reason=f"Deployment{change.value.capitalize()}",
            message=f"Deployment {pool.name} {change.value} from spec.worker.template",
        )


@kopf.daemon(*POOLS, registry=registry, cancellation_timeout=10.0)
async def poll_pool(
    body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """The pool's poll loop, for as long as the pool exists and this operator runs."""
    await PoolRunner(runtime=_runtime(memo), body=body).run(stopped=stopped)


@kopf.on.event(
    "apps", "v1", "deployments", labels={keys.LABEL_POOL: kopf.PRESENT}, registry=registry
)
async def observe_deployment(
    event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    """Keep the replica cache of owned Deployments current."""
    cache = _runtime(memo).cache
    if event.get("type") == "DELETED":
        cache.forget(namespace=str(body.metadata.namespace), name=str(body.metadata.name))
    else:
        cache.observe(body)
