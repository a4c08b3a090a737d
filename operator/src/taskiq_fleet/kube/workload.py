"""The worker Deployment a pool owns, rendered from its spec. Pure: no API calls.

The user writes a Pod template in Kubernetes' own shape; the operator adds what makes
the Pods part of the fleet: the pool label (the Deployment's selector), the
``app.kubernetes.io`` labels, the environment the fleet middleware and the worker
runtime read, and a termination grace period longer than the drain timeout so a
draining worker is never killed with tasks in hand.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from taskiq_fleet.contract import keys

#: Seconds the grace period exceeds the drain timeout: the worker's own shutdown of its
#: broker connection and the kubelet's signal delivery happen after the drain.
GRACE_MARGIN_S: Final = 15

MANAGED_BY: Final = "taskiq-fleet"
COMPONENT: Final = "worker"


@dataclass(frozen=True, slots=True)
class PoolRef:
    """The pool a workload belongs to: what owner references and labels need."""

    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": f"{keys.API_GROUP}/{keys.API_VERSION}",
            "kind": keys.KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True, slots=True)
class SecretKeyRef:
    name: str
    key: str


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """What the owned Deployment is made of, already validated by the spec models."""

    template: Mapping[str, Any]
    concurrency: int
    drain_timeout_s: int
    broker_kind: str
    queues: tuple[str, ...]
    consumer_group: str | None
    url_secret: SecretKeyRef


def pool_labels(pool: PoolRef) -> dict[str, str]:
    """Labels on the Deployment and every worker Pod; ``LABEL_POOL`` is the selector."""
    return {
        keys.LABEL_POOL: pool.name,
        "app.kubernetes.io/name": "taskiq-worker",
        "app.kubernetes.io/instance": pool.name,
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": "taskiq-fleet",
    }


def selector(pool: PoolRef) -> dict[str, str]:
    """The Deployment's selector: immutable once created, so as small as possible."""
    return {keys.LABEL_POOL: pool.name}


def fleet_env(worker: WorkerSettings) -> list[dict[str, Any]]:
    """The environment every worker container gets, before the user's own entries.

    First, so that the user's variables may refer to them as ``$(REDIS_URL)``.
    """
    env: list[dict[str, Any]] = [
        {
            "name": keys.ENV_REDIS_URL,
            "valueFrom": {
                "secretKeyRef": {"name": worker.url_secret.name, "key": worker.url_secret.key}
            },
        },
        {"name": keys.ENV_POD_NAME, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": keys.ENV_CAPACITY, "value": str(worker.concurrency)},
        {"name": keys.ENV_QUEUE, "value": worker.queues[0]},
        {"name": keys.ENV_DEFAULT_QUEUE, "value": worker.queues[0]},
        {"name": keys.ENV_BROKER_KIND, "value": worker.broker_kind},
    ]
    if worker.consumer_group is not None:
        env.append({"name": keys.ENV_CONSUMER_GROUP, "value": worker.consumer_group})
    return env


def render_pod_template(*, pool: PoolRef, worker: WorkerSettings) -> dict[str, Any]:
    """The user's Pod template with the fleet's labels, environment and grace period."""
    template = copy.deepcopy(dict(worker.template))
    metadata = template.setdefault("metadata", {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **pool_labels(pool)}
    spec = template.setdefault("spec", {})

    # Ours win over the user's entries of the same name: the engine's arithmetic depends
    # on the capacity and queue the workers report matching the pool's spec.
    ours = fleet_env(worker)
    names = {entry["name"] for entry in ours}
    for container in spec.get("containers") or []:
        own = [entry for entry in container.get("env") or [] if entry.get("name") not in names]
        container["env"] = [*copy.deepcopy(ours), *own]

    minimum_grace_s = worker.drain_timeout_s + GRACE_MARGIN_S
    given = spec.get("terminationGracePeriodSeconds")
    if not isinstance(given, int) or given < minimum_grace_s:
        spec["terminationGracePeriodSeconds"] = minimum_grace_s
    return template


def template_hash(template: Mapping[str, Any]) -> str:
    """A short, stable digest of a rendered Pod template (key order does not matter)."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def render_deployment(*, pool: PoolRef, worker: WorkerSettings, replicas: int) -> dict[str, Any]:
    """The whole Deployment to create; ``replicas`` is only its starting count."""
    template = render_pod_template(pool=pool, worker=worker)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": pool.name,
            "namespace": pool.namespace,
            "labels": pool_labels(pool),
            "annotations": {keys.ANNOTATION_TEMPLATE_HASH: template_hash(template)},
            "ownerReferences": [pool.owner_reference()],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector(pool)},
            "template": template,
        },
    }
