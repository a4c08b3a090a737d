"""What the operator last saw of the worker Deployments it owns, kept by a watch.

Reading every Deployment at every poll would cost the API server one request per pool
per poll. A watch on Deployments carrying the pool label keeps this cache current; the
target reads from it, and writes its own replica changes into it at once, so a poll
that follows a scale never sees the old count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from taskiq_fleet.contract import keys


@dataclass(frozen=True, slots=True)
class SeenWorkload:
    """One Deployment as the watch last delivered it."""

    namespace: str
    name: str
    uid: str
    replicas: int
    ready_replicas: int
    owner_uid: str | None
    template_hash: str | None
    pool: str | None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> SeenWorkload:
        metadata = body.get("metadata") or {}
        spec = body.get("spec") or {}
        status = body.get("status") or {}
        owner_uid = next(
            (
                ref.get("uid")
                for ref in metadata.get("ownerReferences") or []
                if ref.get("controller") and ref.get("kind") == keys.KIND
            ),
            None,
        )
        replicas = spec.get("replicas")
        return cls(
            namespace=str(metadata.get("namespace", "")),
            name=str(metadata.get("name", "")),
            uid=str(metadata.get("uid", "")),
            # An absent spec.replicas means the API's default of one.
            replicas=1 if replicas is None else int(replicas),
            ready_replicas=int(status.get("readyReplicas") or 0),
            owner_uid=owner_uid,
            template_hash=(metadata.get("annotations") or {}).get(keys.ANNOTATION_TEMPLATE_HASH),
            pool=(metadata.get("labels") or {}).get(keys.LABEL_POOL),
        )


class WorkloadCache:
    """Owned Deployments by namespace and name. Single-threaded: one event loop only."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], SeenWorkload] = {}

    def get(self, *, namespace: str, name: str) -> SeenWorkload | None:
        return self._seen.get((namespace, name))

    def observe(self, body: Mapping[str, Any]) -> SeenWorkload:
        """Record a Deployment as an API response or a watch event showed it."""
        seen = SeenWorkload.from_body(body)
        self._seen[(seen.namespace, seen.name)] = seen
        return seen

    def forget(self, *, namespace: str, name: str) -> None:
        self._seen.pop((namespace, name), None)

    def scaled(self, *, namespace: str, name: str, replicas: int) -> None:
        """Note a replica change the operator just made, ahead of its watch event."""
        seen = self._seen.get((namespace, name))
        if seen is not None:
            self._seen[(namespace, name)] = replace(seen, replicas=replicas)

    def __len__(self) -> int:
        return len(self._seen)
